"""The releases service as most of the ministry's services really are: it publishes HMPPS
domain events to SNS, never the platform's SDK, and serves the detail behind each event.

:class:`DomainEventPublisher` has the SDK's ``created``/``updated`` surface, so the same
business rules (:class:`~dataplatform.producers.simulators.releases.ReleasesService`) run
either way. Each change becomes a thin domain event (the case id, the prison, the person's
NOMS number) whose ``detailUrl`` names the version of the case it is about, served by a
small HTTP API on loopback: the product's bridge (``schemas/hmpps/prison_releases_housing_need/bridge.yaml``)
fetches it and publishes the change event. ``dataplatform run`` plays the releases service
this way, so its warnings come from a service that never used the SDK.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dataplatform.aws import aws_client
from dataplatform.config import Settings

EVENT_TYPES = {"scheduled": "release-planning.case.scheduled", "released": "prison-offender-events.prisoner.released",
               "housed": "release-planning.case.housed", "cancelled": "release-planning.case.cancelled"}
RESCHEDULED = "release-planning.case.rescheduled"


def case_detail(case: dict) -> dict[str, Any]:
    """A release case as the service's API shows it (camelCase JSON)."""
    return {"caseId": case["case_id"], "expectedReleaseDate": case["expected_release_date"].isoformat(),
            "localAuthorityCode": case["local_authority_code"], "regionCode": case["region_code"],
            "housingNeed": case["housing_need"], "status": case["status"]}


class LoopbackHttpServer(ThreadingHTTPServer):
    """http.server's threading server with a listen backlog for a bridge's parallel fetches
    (its default of 5 drops connections beyond it, and each dropped one waits a second)."""

    request_queue_size = 128
    daemon_threads = True


class CaseDetailApi:
    """The releases service's API behind ``detailUrl``: ``GET /cases/<id>/v<n>``, one JSON per
    version of a case. It outlives the simulated changes (a service keeps serving its API when
    it has nothing new to say), so events still on the queue can be fetched."""

    def __init__(self) -> None:
        details: dict[str, bytes] = {}
        self._details = details

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = details.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if body is not None else b'{"status": 404}')

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = LoopbackHttpServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="releases-detail-api", daemon=True)

    def add(self, path: str, detail: dict) -> str:
        """Serve ``detail`` at ``path``; its URL."""
        self._details[path] = json.dumps(detail).encode()
        return self.url + path

    def __enter__(self) -> "CaseDetailApi":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class DomainEventPublisher:
    """Publishes each change of a case as an HMPPS domain event on ``topic_arn``, its detail served by ``api``."""

    def __init__(self, settings: Settings, topic_arn: str, api: CaseDetailApi) -> None:
        self.topic_arn, self.api = topic_arn, api
        self.sns = aws_client("sns", settings)
        self._versions: dict[str, int] = {}

    def __enter__(self) -> "DomainEventPublisher":
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def created(self, case: dict) -> None:
        self._publish(EVENT_TYPES["scheduled"], case)

    def updated(self, before: dict, after: dict) -> None:
        changed = after["status"] != before["status"]
        self._publish(EVENT_TYPES[after["status"]] if changed else RESCHEDULED, after)

    def _publish(self, event_type: str, case: dict) -> None:
        case_id = case["case_id"]
        version = self._versions[case_id] = self._versions.get(case_id, 0) + 1
        url = self.api.add(f"/cases/{case_id}/v{version}", case_detail(case))
        occurred: dt.datetime = case["updated_at"]
        event = {"eventType": event_type, "version": 1, "occurredAt": occurred.isoformat(),
                 "description": f"release case {event_type.rsplit('.', 1)[-1]}", "detailUrl": url,
                 "additionalInformation": {"caseId": case_id, "prisonId": case["prison_code"]},
                 "personReference": {"identifiers": [{"type": "NOMS", "value": case["person_ref"]}]}}
        self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(event),
                         MessageAttributes={"eventType": {"DataType": "String", "StringValue": event_type}})
