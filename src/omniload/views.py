"""After a run, create or refresh the views a source keeps over its tables (``Source.views``), in each schema
the run loaded into. A view whose tables are not (yet) in that schema is left out, with a note naming them.
Generic: the source writes the SELECT, the destination runs it."""

from __future__ import annotations

from .destinations import Destination
from .load import Target
from .sources.base import Source


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def refresh_views(source: Source, dest: Destination, targets: list[Target]) -> list[str]:
    """Create or replace ``source``'s views where the run loaded; returns the notes to say."""
    views, keeper = source.views(), dest.views
    if not views:
        return []
    if keeper is None:  # pipeline.ingest refuses such a run before anything is read
        return [f"the source's views are not kept: {dest.display} cannot keep views"]
    infos = source.tables()
    notes = []
    for schema in sorted({t.schema for t in targets}):
        named = {t.source: t.table for t in targets if t.schema == schema}

        def name(table: str, named: dict = named) -> str:
            return named.get(table) or infos[table].dest_name

        def rel(table: str, schema: str = schema, name=name) -> str:
            return f"{_quote(schema)}.{_quote(name(table))}"

        made = []
        for view in views:
            cols = {t: c for t in view.tables + view.optional if (c := keeper.table_columns(schema, name(t)))}
            missing = [t for t in view.tables if t not in cols]
            if missing:
                notes.append(f"view {schema}.{view.name} is not created: it reads {', '.join(missing)}, not loaded in "
                             f"schema {schema}; load {'it' if len(missing) == 1 else 'them'} there too")  # fmt: skip
                continue
            keeper.replace_view(schema, view.name, view.select(rel, cols))
            made.append(view.name)
        if made:
            notes.append(f"views {', '.join(f'{schema}.{v}' for v in made)} are current")
    return notes
