"""Decode a page body into records, fast: typed msgspec structs built from the table spec.

The typed decoder reads only the fields a table keeps (attributes, to-one relationship ids, ``links.next``)
and keeps free-form objects as raw JSON bytes, never parsing them into Python objects. A page whose values
do not have the declared types falls back to a generic parse (and the lenient converter), which keeps every
value as the JSON said it (integers of any width exactly); a body that is not JSON at all (truncated, an HTML
page) decodes to ``None`` so the client retries it. A page nested deeper than a parser can recurse has each
attribute value nested more than ``MAX_DEPTH`` levels cut out first (found without recursion) and kept as its
JSON text (``msgspec.Raw``). An include table's page (``TableSpec.include``) is read generically: its records
are the ``included`` resources each listed record names; a nested table's (``TableSpec.nested``) the rows its
flattener makes of each listed record (consent.py); a single-resource answer's (``TableSpec.single``) its one
resource.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import msgspec

from ...types import JSON, TYPES
from .consent import NESTED
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
        if self.spec.single:  # one resource: read generically as a page of one
            raw = _document(body, single=True)
            return None if raw is None else Doc(raw["data"], None, False)
        if self.spec.nested:
            raw = _document(body)
            if raw is None:
                return None
            rows = [row for rec in raw["data"] if isinstance(rec, dict) for row in NESTED[self.spec.nested](rec)]
            return Doc(rows, (raw.get("links") or {}).get("next"), False)
        try:
            doc = self._decoder.decode(body)
            return Doc(doc.data, doc.links.next if doc.links else None, True)
        except (msgspec.ValidationError, RecursionError):
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


def _document(body: bytes, single: bool = False) -> dict | None:
    """A JSON:API document parsed generically (integers of any width exactly); None when the body is not one
    (the client retries). ``single``: the document of one resource, its ``data`` returned as a list of one."""
    try:
        try:
            raw = msgspec.json.decode(body)
        except RecursionError:
            raw = _shallow(body)
    except msgspec.DecodeError:
        return None
    if single and isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        raw["data"] = [raw["data"]]
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        return None
    return raw


MAX_DEPTH = 256  # values nested deeper are kept as JSON text; parsers recurse per level (Python's limit: ~1,000)
_VALUE_LEVEL = 4  # the containers open around an attribute value: document, data/included, resource, attributes
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)  # strings whole (brackets in them are text), brackets


def _shallow(body: bytes) -> Any:
    """Parse a body nested deeper than ``MAX_DEPTH``: each attribute value nesting deeper is found by a scan that
    does not recurse, replaced by a unique string for the parse, and put back as ``msgspec.Raw`` (its JSON text)."""
    cuts, stack, deep = [], [], None
    for m in _TOKENS.finditer(body):
        c = body[m.start()]
        if c in b"[{":
            stack.append(m.start())
            if len(stack) > MAX_DEPTH and deep is None:
                deep = stack[_VALUE_LEVEL]
        elif c in b"]}":
            if not stack:
                break  # not JSON: the parse below says so
            start = stack.pop()
            if start == deep:
                cuts.append((start, m.end()))
                deep = None
    nonce, parts, kept, pos = uuid.uuid4().hex, [], {}, 0
    for n, (start, end) in enumerate(cuts):
        mark = f"{nonce}:{n}"
        kept[mark] = msgspec.Raw(body[start:end])
        parts += [body[pos:start], b'"', mark.encode(), b'"']
        pos = end
    doc = msgspec.json.decode(b"".join([*parts, body[pos:]]))
    if isinstance(doc, dict):
        for rec in [*(doc.get("data") or ()), *(doc.get("included") or ())]:
            attrs = rec.get("attributes") if isinstance(rec, dict) else None
            if isinstance(attrs, dict):
                for key, value in attrs.items():
                    if isinstance(value, str) and value in kept:
                        attrs[key] = kept[value]
    return doc


def cursor_of(record: Any, field: str) -> Any:
    """The cursor attribute of a typed or generic record (None when it has none)."""
    if isinstance(record, dict):
        return (record.get("attributes") or {}).get(field)
    attrs = record.attributes
    return getattr(attrs, _ident(field), None) if attrs is not None else None
