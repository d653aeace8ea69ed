"""A table whose every row carries fixed columns naming the source's instance it came from (Klaviyo: the account,
``account_id``), for sources whose instances load into the same tables.

:func:`scoped_info` declares the columns first and puts them first in the primary key (composite keys keep their
parts after them), with the values, once known, as the table's ``scope`` (:class:`~omniload.sources.base.TableInfo`):
the engine then confines to those rows what replaces or marks rows (a replace, a reconcile, the newest loaded
cursor). :class:`ScopedReader` wraps any reader: every batch it reads, every key it lists and every row it adopts
gets the columns, so the source's own readers stay unaware of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from ..types import TEXT
from .base import ScanCost, TableInfo, TableReader, TableStats, Window


def scoped_info(info: TableInfo, columns: tuple[str, ...], values: tuple[str, ...] | None) -> TableInfo:
    """``info`` with ``columns`` (text) first among its columns and in its primary key; ``values`` (None: not yet
    known) their values for this instance, as the table's scope."""
    rest = {c: t for c, t in info.columns.items() if c not in columns}
    key = (*columns, *(c for c in info.primary_key if c not in columns))
    scope = tuple(zip(columns, values, strict=True)) if values is not None else ()
    return replace(info, columns={**dict.fromkeys(columns, TEXT), **rest}, primary_key=key, scope=scope)


def with_columns(table: pa.Table, columns: tuple[str, ...], values: tuple[str, ...]) -> pa.Table:
    """``table`` with ``columns`` holding ``values`` in every row, first (replacing columns of those names)."""
    table = table.drop_columns([c for c in columns if c in table.column_names])
    for column, value in reversed(list(zip(columns, values, strict=True))):
        table = table.add_column(
            0, pa.field(column, pa.string()), pa.repeat(pa.scalar(value, pa.string()), table.num_rows)
        )
    return table


class ScopedReader(TableReader):
    """``inner``'s rows, each with ``columns`` set to ``values()`` (asked when first needed: a source may learn
    them in its preflight)."""

    def __init__(
        self, inner: TableReader, columns: tuple[str, ...], values: Callable[[], tuple[str, ...] | None]
    ) -> None:
        self.inner, self.columns, self._values = inner, columns, values

    def values(self) -> tuple[str, ...]:
        values = self._values()
        if values is None:
            raise RuntimeError(f"table '{self.inner.info.name}': {', '.join(self.columns)} not known before reading")
        return values

    @property
    def info(self) -> TableInfo:  # type: ignore[override]
        return scoped_info(self.inner.info, self.columns, self._values())

    @property
    def stats(self) -> TableStats:  # type: ignore[override]
        return self.inner.stats

    def _add(self, table: pa.Table) -> pa.Table:
        return with_columns(table, self.columns, self.values())

    def plan(self, start: datetime | None, end: datetime | None, rows_per_slice: int) -> list[Window]:
        return self.inner.plan(start, end, rows_per_slice)

    def read(self, window: Window) -> Iterator[pa.Table]:
        for batch in self.inner.read(window):
            yield self._add(batch)

    def restore(self, saved: dict) -> None:
        self.inner.restore(saved)

    def resuming(self, first: datetime | None) -> None:
        self.inner.resuming(first)

    def replacing(self) -> None:
        self.inner.replacing()

    def loaded_columns(self, types: dict[str, str]) -> None:
        self.inner.loaded_columns(types)

    def following(self, window: Window) -> Window | None:
        return self.inner.following(window)

    def derive(self, rows: pa.Table) -> pa.Table:
        return self.inner.derive(rows)  # the scope's columns are among the rows read back

    def state_update(self) -> dict:
        return self.inner.state_update()

    def reread(self, column: str, parents: list[str], end: datetime) -> Iterator[pa.Table]:
        for batch in self.inner.reread(column, parents, end):
            yield self._add(batch)

    def adopt(self, rows: pa.Table) -> pa.Table:
        return self._add(self.inner.adopt(rows))

    def scan_cost(self, rows: int, groups: int) -> ScanCost | None:
        return self.inner.scan_cost(rows, groups)

    def current_keys(self) -> pa.Table:
        return self._add(self.inner.current_keys())
