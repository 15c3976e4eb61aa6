"""Housing units and release cases, the entities of the two example products, for every test
(and the processor benchmark) that needs one.

Each builder gives a valid entity with plain defaults; keyword arguments override or add
fields, so a test states only what it is about.
"""

from __future__ import annotations

import datetime as dt
import time

MANCHESTER, NORTH_WEST = "E08000003", "E12000002"
LEEDS, YORKSHIRE = "E08000035", "E12000003"
NEWCASTLE, NORTH_EAST = "E08000021", "E12000001"


HOUSING = "social_housing_availability"      # the housing example's two source products
RELEASES = "prison_releases_housing_need"

def housing_unit(unit_id: str = "HU-1", la: str = MANCHESTER, region: str = NORTH_WEST, status: str = "available",
                 available_from: dt.date | None = None, ts_ms: int | None = None, **fields: object) -> dict:
    """A ``social_housing_availability`` entity (``ts_ms`` sets ``updated_at``; now by default)."""
    return {"unit_id": unit_id, "local_authority_code": la, "region_code": region, "provider": "Council",
            "bedrooms": 1, "accessible": False, "status": status,
            "available_from": available_from or dt.date.today(), "weekly_rent": None,
            "updated_at": ts_ms or int(time.time() * 1000), **fields}


def release_case(case_id: str = "C1", la: str = MANCHESTER, region: str = NORTH_WEST, status: str = "scheduled",
                 release_date: dt.date | None = None, person_ref: str | None = None,
                 ts_ms: int | None = None, **fields: object) -> dict:
    """A ``prison_releases_housing_need`` entity, released in a week unless ``release_date`` says."""
    return {"case_id": case_id, "person_ref": person_ref or f"PERSON-{case_id}", "prison_code": "MRI",
            "expected_release_date": release_date or dt.date.today() + dt.timedelta(days=7),
            "local_authority_code": la, "region_code": region, "housing_need": "general", "status": status,
            "updated_at": ts_ms or int(time.time() * 1000), **fields}
