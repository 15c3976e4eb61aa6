"""The data product manifest: what a service team writes to describe what it publishes.

It follows the Ministry of Justice's data product metadata spec (``name``, ``domain``,
``dataProductOwner``... in camelCase, so its people recognise it) plus what streaming
needs: classification, refresh period, key fields, personal data fields and lineage.
The JSON Schema published at ``schemas/manifest.schema.json`` is generated from this model
(``dataplatform products json-schema``), so the two never disagree.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator


class Domain(str, Enum):
    HQ = "HQ"
    HMPPS = "HMPPS"
    OPG = "OPG"
    LAA = "LAA"
    HMCTS = "HMCTS"
    CICA = "CICA"
    Platforms = "Platforms"


class Status(str, Enum):
    draft = "draft"
    published = "published"
    retired = "retired"


class RefreshMode(str, Enum):
    """How a product is refreshed, which decides what "stale" means for it."""

    periodic = "periodic"    # new events at least every refreshPeriod: older than that is stale
    on_change = "on-change"  # events only when something changes: an old last event is normal


class DpiaStatus(str, Enum):
    in_progress = "in-progress"
    approved = "approved"
    review_due = "review-due"


class Classification(str, Enum):
    official = "Official"
    official_sensitive = "Official-Sensitive"


ProductName = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=100)]


class Manifest(BaseModel):
    """A data product's manifest (``manifest.yaml``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)

    name: ProductName = Field(description="Product name, lower case letters, digits and underscores. Never changes.")
    title: str | None = Field(default=None, max_length=120,
                              description="Human title shown beside the name, e.g. 'Social housing availability'. "
                                          "Default: the name in words.")
    description: str = Field(min_length=10, description="What the product holds and what it is for, in plain English.")
    domain: Domain = Field(description="The part of the organisation that owns it: HQ, HMPPS, OPG, LAA, HMCTS, CICA or Platforms.")
    dataProductOwner: EmailStr = Field(description="Email of the person accountable for the product.")
    dataProductOwnerDisplayName: str = Field(min_length=1, description="The owner's name as people know it.")
    email: EmailStr = Field(description="The team's contact address for questions about the product.")
    dataProductMaintainer: EmailStr | None = Field(default=None, description="Email of the person who maintains it day to day.")
    dataProductMaintainerDisplayName: str | None = Field(default=None, description="The maintainer's name.")
    status: Status = Field(default=Status.draft, description="draft, published or retired.")
    dpiaRequired: bool = Field(description="Whether a data protection impact assessment is required.")
    dpiaLocation: str | None = Field(default=None, description="Where the DPIA is kept (required when dpiaRequired).")
    dpiaStatus: DpiaStatus | None = Field(default=None, description="Where the DPIA stands: in-progress, approved or review-due.")
    retentionPeriod: int = Field(ge=0, description="Days the events are kept on the topic (0: forever, compacted).")
    tags: dict[str, str] | list[str] = Field(default_factory=list, description="Free tags for search, e.g. [housing, releases].")
    version: str = Field(pattern=r"^\d+\.\d+$", description="MAJOR.MINOR. A breaking schema change bumps MAJOR (a new topic).")
    securityClassification: Classification = Field(description="Official or Official-Sensitive.")
    refreshPeriod: timedelta = Field(description="How fresh consumers may expect it, ISO 8601 duration (e.g. PT5M).")
    refreshMode: RefreshMode = Field(
        default=RefreshMode.periodic,
        description="periodic: an event at least every refreshPeriod, so an older last event is stale. on-change: "
                    "events only when something changes (e.g. warnings); freshness then comes from the producer's "
                    "heartbeat (producerGroup), not from the age of the last event.")
    producerGroup: str | None = Field(
        default=None, description="Kafka consumer group of the processor that computes a derived product. Its "
                                  "membership (the group's heartbeats) tells the catalogue whether the producer runs.")
    keyFields: list[str] = Field(min_length=1, description="Entity field(s) that identify an entity; the Kafka key.")
    personalDataFields: list[str] = Field(default_factory=list, description="Entity fields holding personal data. They never leave the product.")
    upstreamProducts: list[str] = Field(default_factory=list, description="Names of the products a derived product is computed from (lineage).")
    producingService: str | None = Field(default=None, description="The service (Kafka principal) allowed to write the topic.")
    consumerGroups: list[str] = Field(default_factory=list, description="Consumer groups allowed to read the topic.")
    subjectArea: str | None = Field(default=None, description="Subject area shown in the catalogue, e.g. Housing.")
    accessRequirements: str | None = Field(default=None, description="How to get access, shown in the catalogue.")
    issueTracker: str | None = Field(default=None, description="Where to report a problem with the data (a URL). "
                                                              "Default: an email to the team contact.")

    @model_validator(mode="after")
    def _dpia_location_when_required(self) -> "Manifest":
        if self.dpiaRequired and not self.dpiaLocation:
            raise ValueError("dpiaLocation is required when dpiaRequired is true (where is the DPIA kept?)")
        return self

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def topic(self) -> str:
        """``<domain>.<name>.v<major>``: a breaking change is a new topic."""
        return f"{str(self.domain).lower()}.{self.name}.v{self.major}"

    @property
    def display_title(self) -> str:
        """The human title: ``title``, or the name in words ("social housing availability")."""
        return self.title or self.name.replace("_", " ").capitalize()

    @property
    def tag_list(self) -> list[str]:
        return list(self.tags) if isinstance(self.tags, list) else [f"{k}:{v}" for k, v in self.tags.items()]


#: Fields a MINOR metadata edit may not change: they identify the product.
IMMUTABLE_FIELDS = ("name", "domain")


class ManifestError(ValueError):
    """A manifest that does not validate; ``problems`` lists each bad field and why."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid data product manifest:\n{lines}")


def parse_manifest(data: object, source: Path | str = "<manifest>") -> Manifest:
    """Validate a manifest's parsed YAML, with one readable problem per bad field."""
    if not isinstance(data, dict):
        raise ManifestError(source, ["the manifest must be a YAML mapping of field: value"])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(manifest)"
            value = f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else ""
            problems.append(f"{where}: {err['msg']}{value}")
        raise ManifestError(source, problems) from None


def load_manifest(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ManifestError(path, [f"not valid YAML: {exc}"]) from None
    return parse_manifest(data, path)


def manifest_json_schema() -> dict:
    """The published JSON Schema of the manifest format."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Data product manifest"
    return schema
