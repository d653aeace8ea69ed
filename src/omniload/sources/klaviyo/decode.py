"""Decode a page body into records, fast: typed msgspec structs built from the table spec.

The typed decoder reads only the fields a table keeps (attributes, to-one relationship ids, ``links.next``)
and keeps free-form objects as raw JSON bytes, never parsing them into Python objects. A page whose values
do not have the declared types falls back to a generic parse (and the lenient converter); a body that is not
JSON at all (truncated, an HTML page) decodes to ``None`` so the client retries it. An include table's page
(``TableSpec.include``) is read generically: its records are the ``included`` resources each listed record names.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _ident(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


class PageDecoder:
    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
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
        with the attributes ``included`` gives it (none if absent) and the listed record's id as a relationship."""
        raw = _document(body)
        if raw is None:
            return None
        found = {(o.get("type"), o.get("id")): o for o in raw.get("included") or () if isinstance(o, dict)}
        owner = self.spec.to_one[0]
        records = []
        for rec in raw["data"]:
            refs = ((rec.get("relationships") or {}).get(self.spec.include) or {}).get("data") or ()
            for ref in refs:
                obj = found.get((ref.get("type"), ref.get("id"))) or {}
                records.append({"id": ref.get("id"), "attributes": obj.get("attributes") or {},
                                "relationships": {owner: {"data": {"id": rec.get("id")}}}})  # fmt: skip
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
