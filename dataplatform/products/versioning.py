"""The organisation's versioning rules, applied to a product's Avro entity schema.

- Removing a field or changing its type is a MAJOR change: a new topic.
- Adding an optional field (one with a default) or changing descriptions is MINOR.
- Adding a required field (no default) breaks old data for new readers: MAJOR.
- Metadata edits are MINOR, and only updatable fields may change (never ``name``/``domain``).

Every comparison produces a :class:`ChangeReport` listing ``added_fields``,
``removed_fields``, ``types_changed`` and ``descriptions_changed``, and
:func:`check_version_bump` says whether the manifest's version moved far enough.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from dataplatform.products.manifest import IMMUTABLE_FIELDS, Manifest


@dataclass
class ChangeReport:
    added_fields: list[str] = field(default_factory=list)
    removed_fields: list[str] = field(default_factory=list)
    types_changed: list[str] = field(default_factory=list)
    descriptions_changed: list[str] = field(default_factory=list)
    required_fields_added: list[str] = field(default_factory=list)
    metadata_changed: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        """NONE, MINOR or MAJOR: the smallest version bump this change needs."""
        if self.removed_fields or self.types_changed or self.required_fields_added:
            return "MAJOR"
        if self.added_fields or self.descriptions_changed or self.metadata_changed:
            return "MINOR"
        return "NONE"

    def to_dict(self) -> dict:
        return {**asdict(self), "level": self.level}


def _type_signature(avro_type: object) -> str:
    """A comparable text of a field's type, ignoring docs and defaults."""
    def strip(t: object) -> object:
        if isinstance(t, dict):
            return {k: strip(v) for k, v in t.items() if k not in ("doc", "default", "aliases")}
        if isinstance(t, list):
            return [strip(x) for x in t]
        return t
    return json.dumps(strip(avro_type), sort_keys=True)


def _flatten(fields: list[dict], prefix: str = "") -> dict[str, dict]:
    """Fields by dotted path, descending into nested records (and nullable records)."""
    out: dict[str, dict] = {}
    for f in fields:
        path = f"{prefix}{f['name']}"
        out[path] = f
        t = f["type"]
        branches = t if isinstance(t, list) else [t]
        for b in branches:
            if isinstance(b, dict) and b.get("type") == "record":
                out.update(_flatten(b["fields"], f"{path}."))
    return out


def compare_schemas(old: dict, new: dict) -> ChangeReport:
    """What changed between two versions of an entity schema."""
    before, after = _flatten(old["fields"]), _flatten(new["fields"])
    report = ChangeReport()
    for path in sorted(set(after) - set(before)):
        report.added_fields.append(path)
        if "default" not in after[path] and "." not in path:
            report.required_fields_added.append(path)
    report.removed_fields = sorted(set(before) - set(after))
    for path in sorted(set(before) & set(after)):
        if _type_signature(before[path]["type"]) != _type_signature(after[path]["type"]):
            # A nested record's own change is reported at its leaves, not again at the parent.
            if not _is_record(before[path]["type"]) or not _is_record(after[path]["type"]):
                report.types_changed.append(path)
        if before[path].get("doc") != after[path].get("doc"):
            report.descriptions_changed.append(path)
    if old.get("doc") != new.get("doc"):
        report.descriptions_changed.append("(record)")
    return report


def _is_record(t: object) -> bool:
    branches = t if isinstance(t, list) else [t]
    return any(isinstance(b, dict) and b.get("type") == "record" for b in branches)


def compare_manifests(old: Manifest, new: Manifest) -> tuple[list[str], list[str]]:
    """(changed updatable fields, problems) between two manifests of one product."""
    old_d, new_d = old.model_dump(), new.model_dump()
    changed = sorted(k for k in new_d if k != "version" and old_d.get(k) != new_d.get(k))
    problems = [
        f"{k}: cannot change from {old_d[k]!r} to {new_d[k]!r}; it identifies the product "
        f"(publish a new product instead)"
        for k in IMMUTABLE_FIELDS if old_d[k] != new_d[k]
    ]
    return [c for c in changed if c not in IMMUTABLE_FIELDS], problems


def check_version_bump(old_manifest: Manifest, old_schema: dict, new_manifest: Manifest,
                       new_schema: dict) -> tuple[ChangeReport, list[str]]:
    """Compare two versions of a product; return the change report and the rule
    violations (empty when the new version is acceptable)."""
    report = compare_schemas(old_schema, new_schema)
    report.metadata_changed, problems = compare_manifests(old_manifest, new_manifest)
    old_v, new_v = (old_manifest.major, old_manifest.minor), (new_manifest.major, new_manifest.minor)
    name = new_manifest.name
    if report.level == "MAJOR" and new_v[0] <= old_v[0]:
        reasons = (
            [f"field '{p}' was removed" for p in report.removed_fields]
            + [f"field '{p}' changed type" for p in report.types_changed]
            + [f"required field '{p}' was added without a default" for p in report.required_fields_added]
        )
        next_topic = new_manifest.topic.rsplit(".v", 1)[0] + f".v{old_v[0] + 1}"
        for reason in reasons:
            problems.append(
                f"{name}: {reason}: a breaking (MAJOR) change needs version {old_v[0] + 1}.0 and a new "
                f"topic ({next_topic}), but the manifest says {new_manifest.version}"
            )
    elif report.level == "MINOR" and new_v <= old_v:
        what = ", ".join(
            [f"added '{p}'" for p in report.added_fields]
            + [f"description of '{p}'" for p in report.descriptions_changed]
            + [f"metadata '{m}'" for m in report.metadata_changed]
        )
        problems.append(
            f"{name}: a compatible (MINOR) change ({what}) needs a version above {old_manifest.version}, "
            f"e.g. {old_v[0]}.{old_v[1] + 1}"
        )
    if new_v < old_v:
        problems.append(f"{name}: version went backwards from {old_manifest.version} to {new_manifest.version}")
    return report, problems
