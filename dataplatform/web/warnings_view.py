"""What the warnings pages show, assembled once for the HTML pages and the live stream.

Times are formatted here (with their zone) for both, so a row rendered with the page and
a row added live read the same; the processor's status and the input products' owners
are worked out here from the manifests and the heartbeats.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dataplatform.derivations.loading import declared_upstream
from dataplatform.heartbeat import HeartbeatBoard, ProcessorStatus
from dataplatform.products.envelope import epoch_ms, from_epoch_ms
from dataplatform.warnings.acknowledgements import AcknowledgementStore
from dataplatform.warnings.figures import FiguresStore
from dataplatform.warnings.follower import FIGURES_PRODUCT
from dataplatform.warnings.kinds import WarningKind, warning_kinds
from dataplatform.warnings.store import SEVERITY_ORDER, WarningStore
from dataplatform.web.charts import sparkline
from dataplatform.web.templating import display_time
from dataplatform.products.product import DataProduct

CURRENT_MAX_AGE_S = 1.0


@dataclass
class WarningsView:
    store: WarningStore
    figures: FiguresStore
    acks: AcknowledgementStore
    zone: str
    products: Callable[[], dict[str, DataProduct]]
    heartbeats: Callable[[], HeartbeatBoard | None]
    _cache: tuple | None = field(default=None, init=False, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- one warning ---------------------------------------------------------------------
    def kinds(self) -> list[WarningKind]:
        return list(warning_kinds().values())

    @staticmethod
    def charted(kind: WarningKind | None) -> bool:
        """Whether the web service keeps this kind's figures over time (for trends and tiles)."""
        return kind is not None and kind.figures_product == FIGURES_PRODUCT

    def decorate(self, w: dict, ack: dict | None = None, *, with_spark: bool = False) -> dict:
        """The transition plus what the page shows: times with their zone, order key, acknowledgement,
        and the words of its kind (its group's level, what the rule has and needs)."""
        kind = warning_kinds().get(w.get("product", ""))
        have, need = (kind.measures(w["rule_id"]) if kind else None) or (None, None)
        since = w.get("raised_at") or w["evidence_at"]
        level = w.get("group_level")
        out = {**w, "since": since, "since_display": display_time(since, self.zone),
               "detail": w["message"].split("  ", 2)[-1],  # what follows "RED raised  Area  "
               "evidence_display": display_time(w["evidence_at"], self.zone),
               "received_display": display_time(w.get("received_at"), self.zone),
               "rank": SEVERITY_ORDER.get(w["severity"], 3), "acknowledgement": self.decorate_ack(ack, w),
               "kind_title": kind.title if kind else w.get("product", ""),
               "level_note": f" ({level.replace('_', ' ')})" if kind and level and level != kind.base_level else "",
               "have_label": have.label if have else "have", "need_label": need.label if need else "need",
               "have_unit": have.unit if have else "", "need_unit": need.unit if need else "",
               "charted": self.charted(kind),
               "figures": ", ".join(f"{m.label} {n}" + (f" {m.unit}" if m.unit != m.label else "")
                                    for m, n in ((need, w.get("need")), (have, w.get("have"))) if m)}
        return self._with_spark(out) if with_spark else out

    def decorate_ack(self, ack: dict | None, w: dict | None = None) -> dict | None:
        if ack is None:
            return None
        earlier = w is not None and ack["event_id"] != w.get("event_id")
        return {**ack, "at_display": display_time(ack["at"], self.zone),
                "earlier": earlier}  # acknowledged an earlier transition (e.g. at AMBER, now RED)

    def current(self) -> list[dict]:
        """The current warnings with their sparklines (the live page)."""
        return [self._with_spark(w) for w in self.current_rows()]

    def current_rows(self) -> list[dict]:
        """The current warnings, decorated, with their acknowledgements (no sparkline)."""
        return self._current()[0]

    def current_json(self) -> bytes:
        """``/api/warnings``: :meth:`current_rows` as JSON, encoded once per change."""
        return self._current()[1]

    def _current(self) -> tuple[list[dict], bytes]:
        """Kept in memory: read again from the database only after a transition or an
        acknowledgement stored by this process, or once ``CURRENT_MAX_AGE_S`` has passed (an
        acknowledgement made through another replica), so a busy API does no per-request work."""
        def kept() -> tuple[list[dict], bytes] | None:
            cached, key = self._cache, (self.store.version, self.acks.version)
            fresh = cached is not None and cached[0] == key and time.monotonic() - cached[1] < CURRENT_MAX_AGE_S
            return cached[2] if fresh else None

        if answer := kept():
            return answer
        with self._cache_lock:   # one reader refreshes; the others wait for its answer
            if answer := kept():
                return answer
            key = (self.store.version, self.acks.version)   # before reading: a change meanwhile reads again
            rows = self.store.current()
            acks = self.acks.latest_by_warning([w["warning_id"] for w in rows])
            decorated = [self.decorate(w, acks.get(w["warning_id"])) for w in rows]
            answer = decorated, json.dumps(decorated, ensure_ascii=False, separators=(",", ":")).encode()
            self._cache = (key, time.monotonic(), answer)
            return answer

    def _with_spark(self, w: dict) -> dict:
        if not w["charted"]:
            return w
        days = w.get("horizon_days") or 28
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        return {**w, "spark": sparkline(self.figures.series(w["group_code"], since), days=days)}

    # -- the processor -------------------------------------------------------------------
    def derived_periods(self) -> dict[str, int]:
        """Refresh period (seconds) of each derived product, from its manifest."""
        products = self.products()
        upstream = declared_upstream(products)
        return {p.name: int(p.manifest.refreshPeriod.total_seconds()) for p in products.values() if upstream.get(p.name)}

    def processor(self) -> dict:
        board: HeartbeatBoard | None = self.heartbeats()
        at = epoch_ms()
        statuses = board.status(self.derived_periods(), at) if board else [
            ProcessorStatus(name, period, None, at) for name, period in sorted(self.derived_periods().items())]
        rows, late = [], []
        for st in statuses:
            d = st.to_dict()
            for key in ("heartbeat_at", "last_evaluation_at", "last_input_event_at"):
                d[key + "_display"] = display_time(d[key], self.zone) or (
                    "not yet" if st.state == "starting" else "never")
            rows.append(d)
            if st.alarming:
                late.append(d)
        return {"products": rows, "late": late, "checked_at_display": display_time(
            from_epoch_ms(at), self.zone)}

    # -- who to call ---------------------------------------------------------------------
    def input_owners(self, product_name: str) -> list[dict]:
        """Owners of every product upstream of ``product_name``, nearest first."""
        products: dict[str, DataProduct] = self.products()
        upstream = declared_upstream(products)
        seen, queue, out = {product_name}, list(upstream.get(product_name, [])), []
        while queue:
            name = queue.pop(0)
            if name in seen or name not in products:
                continue
            seen.add(name)
            m = products[name].manifest
            out.append({"product": name, "topic": products[name].topic, "owner": m.dataProductOwnerDisplayName or
                        m.dataProductOwner, "owner_email": m.dataProductOwner, "team_email": m.email,
                        "derived": bool(upstream.get(name))})
            queue.extend(upstream.get(name, []))
        return out
