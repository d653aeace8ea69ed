"""List every id a Klaviyo table holds now, as cheaply as the API allows, for reconciling deletes.

List endpoints never return deleted records, so the ids a destination holds that a full listing no longer shows
are the deleted ones. The listing asks for the sparse fieldset ``fields[<type>]=id`` (no attributes at all), the
largest page, no sort, no time filter, and every partition (archived flows and campaigns are not deleted). A
child table (memberships, flow actions) is listed through its child endpoint for every current parent, by
:func:`.children.child_pages` as a load does. Events are never scanned (far too many; a deleted profile's events
are found by its id instead), and tables loaded whole each run (tags, coupons) need no scan: deleted records
vanish on their next load.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from ..base import ReadEvents, ScanCost, Window
from .spec import TableSpec


def scannable(spec: TableSpec) -> bool:
    """Whether a scan reconciles ``spec``'s deletes: merged tables except immutable ones (events) and nested ones
    (subscriptions: their rows go with their profile, marked along with it)."""
    return spec.cursor is not None and not spec.immutable and not spec.nested


def key_spec(spec: TableSpec) -> TableSpec:
    """``spec`` read for its keys only: id fieldset, no cursor, filter, sort or owner; partitions and parent kept."""
    return replace(spec, columns={}, to_one=(), cursor=None, lower_op=None, upper_op=None, sort=None, owner=None,
                   extra_params={f"fields[{spec.resource_type}]": "id"})  # fmt: skip


def _pages(rows: int, spec: TableSpec) -> int:
    return math.ceil(rows / spec.records_per_page)


def scan_cost(spec: TableSpec, tables: dict[str, TableSpec], rows: int, groups: int) -> ScanCost:
    """Requests and seconds (at each bucket's steady limit) of listing ``rows`` keys of ``spec``: a page per
    ``page_size`` keys in each partition; for a child table, listing its ``groups`` parents (recursively) and at
    least one request per parent."""
    requests = max(len(spec.partitions), _pages(rows, spec) + len(spec.partitions) - 1)
    if spec.parent is not None:
        requests = groups + _pages(rows, spec)
    seconds = requests * 60 / spec.steady
    parent = tables.get(spec.parent.table) if spec.parent is not None else None
    while parent is not None:  # the parents' listing: the same number of parents at every level (an estimate)
        listed = max(len(parent.partitions), _pages(groups, parent) + len(parent.partitions) - 1)
        requests += listed
        seconds += listed * 60 / parent.steady
        parent = tables.get(parent.parent.table) if parent.parent is not None else None
    return ScanCost(requests, seconds)


class _Notes(ReadEvents):
    """A scan's events: its notes are the table's; its pages are not rows loaded."""

    def __init__(self, events: ReadEvents) -> None:
        self.events = events

    def note(self, message: str) -> None:
        self.events.note(message)


def read_keys(reader, end: datetime) -> pa.Table:
    """Every key of the reader's table: a whole listing through the reader's own paging (its requests count in
    its stats); an error anywhere raises, so a partial listing is never returned."""
    spec = reader.spec
    lean = type(reader)(reader.source, key_spec(spec), reader.options, _Notes(reader.events))
    lean.stats = reader.stats
    columns = list(spec.primary_key)
    parts = [batch.select(columns) for batch in lean.read(Window(None, end))]
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(parts)
