"""How a product's personal fields (its manifest's ``personalDataFields``) are kept out of sight.

A reader of product topics shows each personal field as ``***redacted***`` unless asked
otherwise (:class:`~dataplatform.product_io.reader.ProductReader`), and an error text that
goes to a dead-letter topic has the personal values of its event scrubbed out
(:func:`personal_values`). The rule lives beside the product it reads the fields from, so
the reader, the sinks and the stream processor apply the same one. (A sink's own policy,
dropping or hashing the fields in the rows it writes, is :mod:`dataplatform.sinks.columns`.)
"""

from __future__ import annotations

from dataplatform.products.product import DataProduct

REDACTED = "***redacted***"
ENVELOPE_SIDES = ("before", "after")


def redact(product: DataProduct, entity: dict | None) -> dict | None:
    """The entity with each personal field of ``product`` shown as ``***redacted***``."""
    if entity is None:
        return None
    return {k: (REDACTED if k in product.personal_fields else v) for k, v in entity.items()}


def redact_event(product: DataProduct, event: dict | None) -> dict | None:
    """A change event with the personal fields of its ``before`` and ``after`` redacted."""
    if event is None or not product.personal_fields:
        return event
    return {**event, **{side: redact(product, event.get(side)) for side in ENVELOPE_SIDES}}


def personal_values(product: DataProduct, event: dict | None) -> list[object]:
    """The values of the personal fields in a change event (to keep them out of error texts)."""
    entities = [(event or {}).get(side) or {} for side in ENVELOPE_SIDES]
    return [entity.get(f) for entity in entities for f in product.personal_fields]
