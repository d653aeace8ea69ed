"""Fill a to-one relationship the API names by links only (a catalog variant's item) from its owner's side.

Klaviyo sends a catalog variant's ``item`` relationship with ``links`` and no ``data``, and has no endpoint from a
variant to its item's id; a catalog item names its variants with ``include=variants``. So the first batch with
a row lacking its owner lists the owner table once, ids only (``include=<relationship>``, ``fields[<owner>]=id``,
``fields[<related>]=id``, the largest page: owners/100 requests), and maps every related id to its owner. Whether
an include names every related record of an owner is not documented, so rows that listing does not name (an include
cut short, or a record created since) make the owner's relationship endpoint (``Owner.fallback``) be read once
for every owner, through :mod:`.children`: one request per owner more, and nothing left unnamed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from .children import child_pages
from .extract import Plan, run_plan
from .spec import Parent, TableSpec


def owner_listing(spec: TableSpec, owner: TableSpec) -> TableSpec:
    """``owner``'s listing with its ``spec`` records included, ids only: one record per (owner, related record)."""
    assert spec.owner is not None
    params = {
        "include": spec.owner.relationship,
        f"fields[{owner.resource_type}]": "id",
        f"fields[{spec.resource_type}]": "id",
    }
    return replace(owner, columns={}, to_one=("owner",), include=spec.owner.relationship, cursor=None, lower_op=None,
                   upper_op=None, sort=None, extra_params=params, parent=None, primary_key=("id",), id_column="id",
                   dependents=(), owner=None)  # fmt: skip


def owner_endpoint(spec: TableSpec, owner: TableSpec) -> TableSpec:
    """The owner's relationship endpoint as a child table: one request per owner (its rate limit is the owner
    endpoint's), each row a related id with its owner's id in the owner column."""
    assert spec.owner is not None
    return TableSpec(f"{spec.name}:{spec.owner.table}", spec.owner.fallback, spec.resource_type, {}, owner.burst,
                     owner.steady, owner.page_size, parent=Parent(owner.name, column=spec.owner.column, fields="id"))  # fmt: skip


class Owners:
    """Fills ``spec.owner.column`` of a table's batches (see the module's doc); lists the owners at most once."""

    def __init__(
        self, factory: Callable, spec: TableSpec, tables: dict[str, TableSpec], end: datetime, parallelism: int
    ) -> None:
        assert spec.owner is not None
        self.factory, self.spec, self.tables, self.end, self.parallelism = factory, spec, tables, end, parallelism
        self.found: dict[str, str] | None = None  # related id -> owner id
        self.asked_each = False  # the fallback ran

    def fill(self, table: pa.Table) -> pa.Table:
        column = self.spec.owner.column
        given = table.column(column)
        if given.null_count == 0:
            return table
        ids, owners = table.column(self.spec.id_column).to_pylist(), given.to_pylist()
        if self.found is None:
            self.found = self._listed()
        if not self.asked_each and any(o is None and i not in self.found for i, o in zip(ids, owners, strict=False)):
            self.asked_each = True
            self.found.update(self._asked_each())
        filled = [o if o is not None else self.found.get(i) for i, o in zip(ids, owners, strict=False)]
        return table.set_column(table.schema.get_field_index(column), column, pa.array(filled, pa.string()))

    def _listed(self) -> dict[str, str]:
        lean = owner_listing(self.spec, self.tables[self.spec.owner.table])
        found: dict[str, str] = {}
        with closing(run_plan(self.factory, Plan(lean, None, self.end, self.parallelism))) as pages:
            for page in pages:
                for rec in page.records:
                    found[rec["id"]] = rec["relationships"]["owner"]["data"]["id"]
        return found

    def _asked_each(self) -> dict[str, str]:
        child = owner_endpoint(self.spec, self.tables[self.spec.owner.table])
        column = self.spec.owner.column
        found: dict[str, str] = {}
        with closing(child_pages(self.factory, child, self.tables, None, self.end, self.parallelism)) as pages:
            for page in pages:
                for rec in page.records:
                    found[rec["id"] if isinstance(rec, dict) else rec.id] = page.consts[column]
        return found


__all__ = ["Owners", "owner_endpoint", "owner_listing"]
