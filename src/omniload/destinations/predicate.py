"""``--incremental-predicate`` (ingestr's): a SQL condition added to the match between a merge's new rows and
the table's rows, so that the destination looks only at the rows it names (ingestr's alias ``target`` is the
table). dlt builds the merge of SQL destinations (DuckDB, PostgreSQL) in ``SqlMergeFollowupJob``: its key clauses
(``d.id = s.id``, ``d`` the table, ``s`` the staging copy) get ``AND (predicate)``. Rows the predicate leaves out
are not matched, so a new version of such a record is added beside the old one (as ingestr warns).
"""

from __future__ import annotations

import re

_PREDICATE: list[str] = []  # the run's predicate (one per process run), as dlt's clause template


def use(predicate: str | None) -> None:
    """Add ``predicate`` to every merge of this process from now on (None: none)."""
    from dlt.destinations.sql_jobs import SqlMergeFollowupJob

    _PREDICATE.clear()
    if predicate:
        template = predicate.replace("{", "{{").replace("}", "}}")
        _PREDICATE.append(re.sub(r"\btarget\.", "{d}.", template))
    if getattr(SqlMergeFollowupJob, "_omniload_original", None) is None:
        original = SqlMergeFollowupJob._gen_key_table_clauses.__func__

        def clauses(cls, primary_keys, merge_keys):
            out = original(cls, primary_keys, merge_keys)
            return [f"({c}) AND ({_PREDICATE[0]})" for c in out] if _PREDICATE else out

        SqlMergeFollowupJob._omniload_original = original
        SqlMergeFollowupJob._gen_key_table_clauses = classmethod(clauses)
