"""Signed webhook notifications of warning transitions, delivered once each.

Each transition is queued per URL in ``webhook_deliveries`` (unique on URL and event id, so
a transition read twice is still queued once) and delivered by a background worker with
exponential backoff until the receiver answers 2xx. The body is the transition as JSON;
``X-Dataplatform-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body with the
shared secret, so receivers can check it came from us (see :func:`verify_signature`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading

import httpx
from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from dataplatform.warnings.store import Base

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Dataplatform-Signature"
EVENT_ID_HEADER = "X-Dataplatform-Event-Id"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("url", "event_id", name="uq_webhook_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """What a receiver runs: constant-time comparison of the signature header."""
    return bool(header) and hmac.compare_digest(sign(body, secret), header)


class ReceiverError(Exception):
    pass


class WebhookDispatcher:
    """Queue transitions per URL and deliver them in the background with retries."""

    def __init__(self, engine: Engine, urls: list[str], secret: str, *, max_attempts: int = 8,
                 backoff_max_s: float = 30.0, timeout_s: float = 10.0) -> None:
        self.engine, self.urls, self.secret = engine, urls, secret
        self.max_attempts, self.backoff_max_s, self.timeout_s = max_attempts, backoff_max_s, timeout_s
        Base.metadata.create_all(engine)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, transition: dict) -> int:
        """Queue one transition for every URL; returns how many deliveries were new."""
        body = json.dumps(transition, sort_keys=True, default=str)
        new = 0
        for url in self.urls:
            with Session(self.engine) as session:
                session.add(WebhookDelivery(url=url, event_id=transition["event_id"], body=body))
                try:
                    session.commit()
                    new += 1
                except IntegrityError:
                    pass
        if new:
            self._wake.set()
        return new

    def deliver_pending(self) -> None:
        with Session(self.engine) as session:
            pending = session.scalars(select(WebhookDelivery).where(WebhookDelivery.delivered_at.is_(None))
                                      .order_by(WebhookDelivery.id)).all()
            for delivery in pending:
                self._deliver(session, delivery)
                session.commit()

    def _deliver(self, session: Session, delivery: WebhookDelivery) -> None:
        body = delivery.body.encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret),
                   EVENT_ID_HEADER: delivery.event_id}
        try:
            for attempt in Retrying(stop=stop_after_attempt(self.max_attempts),
                                    wait=wait_exponential(multiplier=0.2, max=self.backoff_max_s),
                                    retry=retry_if_exception_type((httpx.HTTPError, ReceiverError)), reraise=False):
                with attempt:
                    if self._stop.is_set():
                        return
                    delivery.attempts += 1
                    response = httpx.post(delivery.url, content=body, headers=headers, timeout=self.timeout_s)
                    if response.status_code >= 300:
                        raise ReceiverError(f"{delivery.url} answered {response.status_code}")
            delivery.delivered_at = dt.datetime.now(dt.timezone.utc)
            delivery.last_error = None
            log.info("webhook %s delivered to %s after %d attempt(s)", delivery.event_id, delivery.url, delivery.attempts)
        except RetryError as exc:
            delivery.last_error = str(exc.last_attempt.exception())
            log.warning("webhook %s to %s still failing: %s", delivery.event_id, delivery.url, delivery.last_error)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(5.0)
                self._wake.clear()
                try:
                    self.deliver_pending()
                except Exception:  # keep the worker alive; the row keeps its error
                    log.exception("webhook worker failed")
        self._thread = threading.Thread(target=loop, name="webhooks", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=15)
