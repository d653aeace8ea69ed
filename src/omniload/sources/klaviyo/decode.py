"""Decode a page body into records, fast: typed msgspec structs built from the table spec.

The typed decoder reads only the fields a table keeps (attributes, to-one relationship ids, ``links.next``)
and keeps free-form objects as raw JSON bytes, never parsing them into Python objects. A page whose values
do not have the declared types falls back to a generic parse (and the lenient converter); a body that is not
JSON at all (truncated, an HTML page) decodes to ``None`` so the client retries it. An include table's page
(``TableSpec.include``) is read generically: its records are the ``included`` resources each listed record names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import msgspec
import orjson

from ...types import JSON, TYPES
from .spec import TableSpec

NULL = msgspec.Raw(b"null")


@dataclass
class Doc:
    records: list[Any]  # msgspec structs when ``typed``, else dicts
    next: str | None
    typed: bool
    extra: list[Any] = field(default_factory=list)  # the riding table's records of the same page (see ride.py)


def _ident(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


class PageDecoder:
    """Decodes ``spec``'s pages; with a ``rider`` (an include table read along, see ride.py), each page's
    ``included`` records of the rider too."""

    def __init__(self, spec: TableSpec, rider: TableSpec | None = None) -> None:
        self.spec = spec
        self.rider = PageDecoder(rider) if rider is not None else None
        attr_fields = []
        for col, typ in spec.columns.items():
            if typ == JSON:
                attr_fields.append((_ident(col), msgspec.Raw, NULL))
            else:
                attr_fields.append((_ident(col), TYPES[typ].python, None))
        rename = {_ident(c): c for c in spec.columns}
        # gc=False: these structs hold only scalars, raw JSON and other such structs, so they cannot form cycles;
        # left to the cyclic collector, a page of 1,000 events triggered it inside decode (~40% of CPU measured)
        Attrs = msgspec.defstruct(f"{_ident(spec.name)}_attrs", attr_fields, rename=rename, gc=False)
        Ref = msgspec.defstruct("Ref", [("id", Optional[str], None)], gc=False)
        Rel = msgspec.defstruct("Rel", [("data", Optional[Ref], None)], gc=False)
        Rels = msgspec.defstruct(f"{_ident(spec.name)}_rels", [(_ident(r), Optional[Rel], None) for r in spec.to_one], gc=False,
                                 rename={_ident(r): r for r in spec.to_one})  # fmt: skip
        Resource = msgspec.defstruct(f"{_ident(spec.name)}_resource", gc=False, fields=[
            ("id", Optional[str], None), ("attributes", Optional[Attrs], None), ("relationships", Optional[Rels], None)])  # fmt: skip
        Links = msgspec.defstruct("Links", [("next", Optional[str], None)], gc=False)
        Document = msgspec.defstruct("Document", [("data", list[Resource]), ("links", Optional[Links], None)])
        self._decoder = msgspec.json.Decoder(Document)
        self.attr_names = [(_ident(c), c, t) for c, t in spec.columns.items()]
        self.empty_attrs = Attrs()
        self.rel_names = [(_ident(r), f"{_ident(r)}_id") for r in spec.to_one]

    def decode(self, body: bytes) -> Doc | None:
        doc = self._own(body)
        if doc is not None and self.rider is not None:
            extra = self.rider.decode(body)
            if extra is None:
                return None
            doc.extra = extra.records
        return doc

    def _own(self, body: bytes) -> Doc | None:
        if self.spec.include:
            return self._included(body)
        try:
            doc = self._decoder.decode(body)
            return Doc(doc.data, doc.links.next if doc.links else None, True)
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError:
            return None
        raw = _document(body)
        return None if raw is None else Doc(raw["data"], (raw.get("links") or {}).get("next"), False)

    def _included(self, body: bytes) -> Doc | None:
        """Records of an include table: for every listed record, each resource its ``include`` relationship names,
        with the attributes and relationships ``included`` gives it (none if absent), the listed record's id as a
        relationship and, when the table has a cursor, the listed record's cursor as an attribute (an event's
        attributions carry their event's ``datetime``)."""
        raw = _document(body)
        if raw is None:
            return None
        found = {(o.get("type"), o.get("id")): o for o in raw.get("included") or () if isinstance(o, dict)}
        owner, cursor = self.spec.to_one[0], self.spec.cursor
        records = []
        for rec in raw["data"]:
            refs = ((rec.get("relationships") or {}).get(self.spec.include) or {}).get("data") or ()
            for ref in refs:
                obj = found.get((ref.get("type"), ref.get("id"))) or {}
                attrs = dict(obj.get("attributes") or {})
                if cursor:
                    attrs[cursor] = (rec.get("attributes") or {}).get(cursor)
                rels = {**(obj.get("relationships") or {}), owner: {"data": {"id": rec.get("id")}}}
                records.append({"id": ref.get("id"), "attributes": attrs, "relationships": rels})
        return Doc(records, (raw.get("links") or {}).get("next"), False)


def _document(body: bytes) -> dict | None:
    """A JSON:API document parsed generically; None when the body is not one (the client retries)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        return None
    return raw


def cursor_of(record: Any, field: str) -> Any:
    """The raw cursor attribute of a typed or generic record."""
    if isinstance(record, dict):
        return (record.get("attributes") or {}).get(field)
    attrs = record.attributes
    return getattr(attrs, _ident(field), None) if attrs is not None else None
