"""The declarative table spec (v2): everything the one generic extractor needs to read one Klaviyo table.

A spec says where the records live (path, HTTP method and body, a parent table for child endpoints; a list's
records sit in ``data``, read by decode.py, a report's in ``data.attributes``, read by report_io.py), how to key
and load them (primary key, composite allowed; incremental key; strategy), which filter operators the server
offers on the incremental key (so the extractor filters server-side where it can and client-side where it
cannot), the rate-limit bucket and page size, and the
declared column schema (so a column never vanishes because one run's rows were all null).

Klaviyo's OpenAPI spec is the source of truth for paths, resource types, rate limits, page sizes, filters and
sorts. The specs (``tables/``) state what omniload takes from it, by hand: omniload ships no OpenAPI file and
may not import the sandbox, whose packaged rules file is generated from the same spec for the sandbox's own use.
So ``tests/test_table_specs.py`` checks the specs against the spec itself (read by the rules file's generator),
not against the sandbox's copy: two copies agreeing would prove nothing about Klaviyo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ...types import TEXT
from ..base import TableInfo

FIXED_PAGE = 200  # records per page of an endpoint without page[size] (metrics), for estimates
CURSOR_KINDS = ("datetime", "period")  # a record's timestamp, or a report's period (a day, a month)


@dataclass(frozen=True)
class Parent:
    """A child endpoint is read once per record of its parent table: ``path`` holds ``{key}``, filled with
    the parent's ``key`` column; the child rows carry it as ``column`` (as dlt's rest_api ``resolve``).
    The parent ids are listed with the sparse fieldset ``fields`` (its smallest attribute); every parent is
    read on every run (see children.py).

    ``filter`` names a filter field instead (coupon codes: ``coupon.id``): the child endpoint is a plain list
    whose parents are given ``batch`` at a time as ``any(<filter>,[...])``, and each row names its parent
    through the to-one relationship that ``column`` comes from (``coupon`` -> ``coupon_id``)."""

    table: str
    key: str = "id"
    column: str = ""  # e.g. "flow_id"; default: "<parent resource type>_id"
    fields: str = ""  # the one attribute asked for when listing the parent's ids
    filter: str = ""  # e.g. "coupon.id": parents go into the filter, not the path
    batch: int = 1  # parents per request when ``filter`` is set


@dataclass(frozen=True)
class Owner:
    """A to-one relationship the API names by links only, with no ``data`` (a catalog variant's ``item``): its
    ``column`` is filled from the owner's side. The owner ``table`` lists, with ``include=<relationship>``, the
    ids of its related records (a catalog item's ``variants``); records that listing does not name are looked up
    through ``fallback``, the owner's relationship endpoint (``{id}`` the owner's id). See owners.py."""

    table: str  # e.g. "catalog-items"
    relationship: str  # e.g. "variants"
    column: str  # e.g. "item_id"
    fallback: str  # e.g. "/api/catalog-items/{id}/relationships/variants"


@dataclass(frozen=True)
class TableSpec:
    name: str
    path: str
    resource_type: str
    columns: dict[str, str]  # attribute -> type (omniload.types)
    burst: int  # rate limit: requests per second
    steady: int  # rate limit: requests per minute
    page_size: int | None  # largest page[size] allowed; None: the endpoint has fixed pages
    cursor: str | None = None  # incremental key (attribute); None: full refresh (replace)
    lower_op: str | None = None  # server filter operator for "cursor >= start" ("greater-or-equal"/"greater-than")
    upper_op: str | None = None  # server filter operator for "cursor < end" ("less-than")
    sort: str | None = None  # sort parameter value for stable paging
    to_one: tuple[str, ...] = ()  # relationships lifted to "<name>_id" columns
    partitions: tuple[tuple[str, dict[str, str]], ...] = (("", {}),)  # (filter fragment, constant columns)
    extra_params: dict[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ("id",)
    immutable: bool = False  # a record never changes once created (events): newer rows can be appended
    method: str = "GET"
    body: dict[str, Any] | None = None  # JSON request body (POST endpoints such as reports)
    parent: Parent | None = None
    cursor_kind: str = "datetime"
    bucket: str = ""  # rate-limit bucket; default: the table's own (each Klaviyo endpoint has its own)
    # Each run re-reads this much before the saved cursor: records that become visible late (the API is
    # eventually consistent) or are stamped in the past (events may carry any past time) are caught.
    lookback: timedelta = timedelta(minutes=10)
    deep_lookback: timedelta = timedelta(0)  # re-read at most once a day instead of ``lookback`` (load.py)
    id_column: str = "id"  # the column the record's id lands in (memberships: the profile's id is "profile_id")
    # (table, column): what Klaviyo deletes along with a record of this table (a profile's events, a list's
    # memberships); a parent's children are added by tables/__init__.py
    dependents: tuple[tuple[str, str], ...] = ()
    # the columns this table's endpoint filters on with ``equals`` for one parent (events: ``profile_id``), a
    # child table's parent column (memberships: ``segment_id``, its endpoint under that parent), or a child table's
    # other column (memberships: ``profile_id``, every parent's endpoint read whole): the records of a parent that
    # came back are read again by it (TableInfo.reread_by, KlaviyoReader.reread)
    reread_by: tuple[str, ...] = ()
    # A table read from another endpoint's ``included`` resources (``include=<this>`` on the parent's listing):
    # one row per (listed record, related record), the listed record's id in the first ``to_one`` column
    # (campaign messages: ``include=campaign-messages`` on /api/campaigns, ``campaign_id``). See decode.py.
    include: str = ""
    # The path holds ``{kind}``: one endpoint per kind (tag links: a tag's campaigns, flows, lists, segments), each
    # its own rate-limit bucket; every row carries its kind in column ``kind``. Relationship endpoints such as these
    # answer resource identifiers only (``{type, id}``, no attributes): a spec with no columns reads them as is.
    kinds: tuple[str, ...] = ()
    owner: Owner | None = None  # a to-one relationship filled from its owner's side (owners.py)
    # columns computed from the others on each Arrow batch, not read from the API (events: the well-known
    # properties of ``event_properties``, properties.py)
    derived: dict[str, str] = field(default_factory=dict)
    derived_from: str = ""  # the column the derived ones are computed from (a table loaded before they existed
    # gets them filled from it in the destination, load.py)
    # Rows made from each listed record by the flattener of this name (consent.py: a profile's ``subscriptions``,
    # one row per channel), instead of one row per record.
    nested: str = ""
    # The endpoint answers one resource (``data`` an object, no pages): ``GET /api/lists/{id}``, read once per parent
    # record (the path's ``{id}``) for what no list endpoint gives (a list's ``profile_count``). See tables/counts.py.
    single: bool = False
    in_all: bool = True  # False: loaded only when named (or opted into ``all`` by a URI option, options.py)

    def __post_init__(self) -> None:
        problems = []
        if self.method not in ("GET", "POST"):
            problems.append(f"method {self.method}")
        if self.method == "POST" and self.body is None:
            problems.append("a POST needs a body")
        if bool(self.kinds) != ("{kind}" in self.path):
            problems.append(f"path {self.path} and kinds {self.kinds} disagree")
        if self.include and not self.to_one:
            problems.append("an include table names its parent's id column in to_one")
        if self.parent is not None and not self.parent.filter and "{" + self.parent.key + "}" not in self.path:
            problems.append(f"path {self.path} lacks {{{self.parent.key}}} for its parent")
        if self.cursor_kind not in CURSOR_KINDS:
            problems.append(f"cursor kind {self.cursor_kind}")
        if (self.lower_op or self.upper_op) and not self.cursor:
            problems.append("filter operators without a cursor")
        if self.derived and self.derived_from not in self.columns:
            problems.append(f"derived columns come from no column ('{self.derived_from}')")
        if self.single and (self.page_size or self.cursor):
            problems.append("a single-resource endpoint has no pages and no cursor")
        if self.owner is not None and self.owner.column not in self.all_columns:
            problems.append(f"owner column {self.owner.column} is not a column")
        missing = [k for k in self.primary_key if k not in self.all_columns]
        if missing:
            problems.append(f"primary key columns {missing} are not columns")
        if problems:
            raise ValueError(f"table spec '{self.name}': " + "; ".join(problems))

    @property
    def strategy(self) -> str:
        return "merge" if self.cursor else "replace"

    @property
    def records_per_page(self) -> int:
        """Records in a full page, for estimates: ``page_size``, or ``FIXED_PAGE`` for endpoints with fixed pages."""
        return self.page_size or FIXED_PAGE

    @property
    def rate_bucket(self) -> str:
        return self.bucket or self.name

    @property
    def splittable(self) -> bool:
        """Time windows can be fetched in parallel only when the server bounds the cursor on both sides."""
        return bool(self.lower_op and self.upper_op)

    @property
    def parent_column(self) -> str | None:
        if self.parent is None:
            return None
        return self.parent.column or f"{self.parent.table.rstrip('s').replace('-', '_')}_id"

    @property
    def all_columns(self) -> dict[str, str]:
        cols = {self.id_column: TEXT, **self.columns}
        for rel in self.to_one:
            cols[f"{rel.replace('-', '_')}_id"] = TEXT
        for _, consts in self.partitions:
            for key in consts:
                cols[key] = TEXT
        if self.kinds:
            cols["kind"] = TEXT
        if self.parent is not None:
            cols[self.parent_column] = TEXT
        return {**cols, **self.derived}

    @property
    def info(self) -> TableInfo:
        if self.cursor_kind == "period":  # a report: its reader keeps the period cursor itself (reports.py), as
            # empty periods count as done too; costly (a daily budget), so loaded only when named. A values report
            # (no cursor) holds one timeframe's totals: each run replaces it
            return TableInfo(
                self.name, self.primary_key, None, self.strategy, self.all_columns, in_all=False, group=self.rate_bucket
            )
        lookback = self.lookback if self.cursor else timedelta(0)
        return TableInfo(self.name, self.primary_key, self.cursor, self.strategy, self.all_columns, self.immutable, lookback,
                         in_all=self.in_all, group=self.rate_bucket, dependents=self.dependents, reread_by=self.reread_by,
                         deep_lookback=self.deep_lookback if self.cursor else timedelta(0),
                         derived={c: self.derived_from for c in self.derived})  # fmt: skip
