"""What the bridge tests need around a bridge: a source service's detail API and its domain events.

:class:`DetailApi` is a small local HTTP server playing the service behind ``detailUrl``
(it can be taken down for an outage, and counts its calls); :func:`release_event` is one
HMPPS domain event of the releases example; :func:`publish` sends events to an SNS topic
exactly as a service does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from dataplatform.producers.simulators.domain_events import LoopbackHttpServer


class DetailApi:
    """``GET /cases/<id>/v<n>`` answers the JSON stored under that path; 503 while ``down``."""

    def __init__(self) -> None:
        self.details: dict[str, dict] = {}
        self.down = threading.Event()
        self.calls = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                api.calls += 1
                found = None if api.down.is_set() else api.details.get(self.path)
                status = 503 if api.down.is_set() else 200 if found is not None else 404
                body = json.dumps(found if found is not None else {"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = LoopbackHttpServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "DetailApi":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, case: dict, version: int) -> str:
        """Serve ``case`` (a release case in the service's JSON) as version ``version``; its URL."""
        path = f"/cases/{case['caseId']}/v{version}"
        self.details[path] = case
        return self.url + path


def release_case(case_id: str, status: str = "scheduled", date: str = "2026-12-19",
                 area: str = "E08000003", region: str = "E12000002") -> dict:
    return {"caseId": case_id, "expectedReleaseDate": date, "localAuthorityCode": area, "regionCode": region,
            "housingNeed": "general", "status": status}


def release_event(event_type: str, case_id: str, noms: str, occurred_at: str, detail_url: str,
                  version: int = 1) -> dict:
    return {"eventType": event_type, "version": version, "occurredAt": occurred_at,
            "description": "a release case changed", "detailUrl": detail_url,
            "additionalInformation": {"caseId": case_id, "prisonId": "MRI"},
            "personReference": {"identifiers": [{"type": "NOMS", "value": noms}]}}


def publish(sns: Any, topic_arn: str, event: dict) -> str:
    """Publish one domain event as HMPPS services do (eventType also as an attribute); its SNS MessageId."""
    return sns.publish(TopicArn=topic_arn, Message=json.dumps(event), MessageAttributes={
        "eventType": {"DataType": "String", "StringValue": event["eventType"]}})["MessageId"]
