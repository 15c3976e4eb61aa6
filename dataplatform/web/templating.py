"""The Jinja2 environment of the web pages (GOV.UK Frontend styles, served locally)."""

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from dataplatform import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__
STATIC_DIR = HERE / "static"


def display_time(value: str | dt.datetime | None, zone: str = "Europe/London") -> str:
    """One format for every time on the pages, with its zone: ``3 Mar 2026 14:05 GMT``.

    The live stream sends times already formatted by this function, so a row added live
    reads exactly like one rendered with the page.
    """
    if not value:
        return ""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    when = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(ZoneInfo(zone))
    return f"{when.day} {when:%b %Y %H:%M %Z}"


templates.env.filters["when"] = display_time


def row_id(warning_id: str) -> str:
    """A warning's row id on the live page: ``w-`` and the id with anything but letters, digits,
    ``_`` and ``-`` as ``_`` (warnings.js builds the same id for a row added live)."""
    return "w-" + re.sub(r"[^A-Za-z0-9_-]", "_", warning_id)


templates.env.filters["row_id"] = row_id
