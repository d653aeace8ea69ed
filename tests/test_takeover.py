"""Taking over tables ingestr made (issue #27): a DuckDB file and a PostgreSQL database loaded by dlt the way ingestr
loads Klaviyo (bruin-data/ingestr ``ingestr/main.py`` and ``ingestr/src/klaviyo/`` before its Go rewrite: one
pipeline named sha256("schema.table"), ``max_table_nesting=0``, attributes lifted to columns but kept as one JSON
``attributes`` column for tags, ``relationships``/``links`` as JSON, merge on ``id`` with dlt's incremental cursor,
dlt's defaults otherwise), then a day passes and omniload runs incrementally into the same tables.

ingestr itself cannot be installed here (and its revision 2024-07-15 is refused with 410 today): the records are
fetched from the sandbox as ingestr's client fetches them, with the current revision."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import duckdb
import pytest

from .conftest import http_get, http_post, run_cli, source_uri
from .helpers import assert_rows_equal_truth, by_id, expected_rows, sandbox_now
from .test_destinations import _pg_rows

# table -> (ingestr's listing path, cursor, write disposition, attributes kept as one JSON column)
INGESTR = {
    "tags": ("/api/tags", None, "replace", True),
    "metrics": ("/api/metrics", "updated", "merge", False),
    "profiles": ("/api/profiles?sort=updated", "updated", "merge", False),  # no additional-fields: no subscriptions
    "events": ("/api/events?sort=-datetime", "datetime", "merge", False),
}
# what omniload says of each: its rows taken over (then read on from the newest cursor), or the table read whole
SAYS = {
    "tags": "this table is read whole on every run; it is replaced by a full read",
    "metrics": "took over its",
    "events": "took over its",
    "profiles": "its rows cannot be converted: they lack 'subscriptions', which Klaviyo sends only when asked for",
}
# events: the deep lookback (7 days), due on the first run after a takeover (no deep re-read saved yet)
LOOKBACK = {"metrics": timedelta(minutes=10), "profiles": timedelta(minutes=10), "events": timedelta(days=7)}


def _records(sb, path: str, keep_attributes: bool) -> list[dict]:
    """Every record of a listing, as ingestr's client shapes it (attributes lifted unless kept)."""
    out, url = [], path
    while url:
        doc = http_get(sb.base_url, url).json
        for rec in doc["data"]:
            if not keep_attributes and "attributes" in rec:
                rec.update(rec.pop("attributes"))
            out.append(rec)
        url = (doc.get("links") or {}).get("next")
    return out


def _source(records: list[dict], table: str, disposition: str, cursor: str | None):
    """ingestr's dlt source of one Klaviyo table: no nesting, merge on id with dlt's incremental cursor."""
    import dlt

    def rows(incremental=None):
        yield records

    resource = dlt.resource(rows, name=table, write_disposition=disposition, primary_key="id")
    if cursor:
        resource.apply_hints(incremental=dlt.sources.incremental(cursor, "2000-01-01T00:00:00Z"))
    return dlt.source(lambda: resource, name="klaviyo_source", max_table_nesting=0)()


def _ingestr_load(sb, destination, tmp_path) -> dict[str, object]:
    """Load INGESTR's tables as ``klaviyo.<table>`` the way ingestr does; the newest cursor value of each."""
    import dlt

    newest = {}
    for table, (path, cursor, disposition, keep) in INGESTR.items():
        records = _records(sb, path, keep)

        source = _source(records, table, disposition, cursor)

        pipeline = dlt.pipeline(pipeline_name=hashlib.sha256(f"klaviyo.{table}".encode()).hexdigest(),
                                destination=destination, pipelines_dir=str(tmp_path / "ingestr"))  # fmt: skip
        pipeline.run(source, dataset_name="klaviyo", table_name=table, loader_file_format="parquet")
        if cursor:
            newest[table] = max(r[cursor] for r in records)
    return newest


def _fetched(stderr: str, table: str) -> int:
    return int(re.search(rf"\[{table}\] finish: .*\((\d+) fetched\)", stderr).group(1))


def _take_over(sb, dest_uri: str, destination, tmp_path, read):
    newest = _ingestr_load(sb, destination, tmp_path)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", ",".join(INGESTR), "--dest-uri", dest_uri,
                   "--dest-table", "klaviyo.*", "--progress", "log", "--yes")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for table in INGESTR:
        got = read(table)
        assert_rows_equal_truth(got, sb, table)
        assert not {c for row in got.values() for c in row} & {
            "attributes",
            "relationships",
            "links",
            "type",
            "_dlt_id",
        }
        assert (
            f"table '{table}': klaviyo.{table} was made by another dlt pipeline (ingestr?): {SAYS[table]}"
            in proc.stderr
        )
        if SAYS[table] == "took over its":
            from omniload.dates import parse_timestamp

            since = parse_timestamp(newest[table]) - LOOKBACK[table]
            # nothing re-read beyond the lookback: what was fetched is what changed since ingestr's newest value
            assert _fetched(proc.stderr, table) == len(expected_rows(sb, table, since, sandbox_now(sb))), table
            assert _fetched(proc.stderr, table) < len(expected_rows(sb, table))
        else:
            assert _fetched(proc.stderr, table) == len(expected_rows(sb, table))
    # the next run goes on from omniload's own cursor, as after any omniload run
    again = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", dest_uri,
                    "--dest-table", "klaviyo.profiles", "--progress", "log")  # fmt: skip
    assert again.returncode == 0 and "took over" not in again.stderr, again.stderr
    assert_rows_equal_truth(read("profiles"), sb, "profiles")


def test_an_ingestr_duckdb_file_is_taken_over_incrementally(make_sandbox, tmp_path):
    import dlt

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=11)
    db = str(tmp_path / "ingestr.duckdb")

    def read(table):
        with duckdb.connect(db, read_only=True) as con:
            return by_id(con.execute(f"select * from klaviyo.{table}"), table)

    _take_over(sb, f"duckdb:///{db}", dlt.destinations.duckdb(db), tmp_path, read)
    with duckdb.connect(db, read_only=True) as con:
        schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "klaviyo_staging" not in schemas  # nothing left behind


def test_an_ingestr_postgres_database_is_taken_over_incrementally(make_sandbox, tmp_path, postgres):
    import dlt

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=12)
    postgres.create_database("ingestr_made")

    _take_over(sb, postgres.uri("ingestr_made"), dlt.destinations.postgres(postgres.uri("ingestr_made")), tmp_path,
               lambda table: _pg_rows(postgres, "ingestr_made", "klaviyo", table))  # fmt: skip


def test_ingestr_rows_convert_column_by_column():
    """What dlt leaves out (an attribute null in every record) is null; what ingestr's rows never hold is refused."""
    import pyarrow as pa

    from omniload.sources.base import CannotAdopt
    from omniload.sources.klaviyo.adopt import adopt
    from omniload.sources.klaviyo.tables import TABLES

    metrics = pa.table(
        {
            "id": ["m1"],
            "type": ["metric"],
            "name": ["Placed Order"],
            "created": ["2026-01-02T03:04:05+00:00"],
            "updated": ["2026-01-03T00:00:00+00:00"],
            "links": ['{"self": "x"}'],
        }
    )  # no "integration": all null
    got = adopt(TABLES["metrics"], metrics).to_pylist()[0]
    assert (
        got["integration"] is None
        and got["name"] == "Placed Order"
        and got["updated"].isoformat() == "2026-01-03T00:00:00+00:00"
    )
    tags = pa.table(
        {"id": ["t1"], "attributes": ['{"name": "VIP"}'], "relationships": ['{"tag-group": {"data": {"id": "g1"}}}']}
    )
    assert adopt(TABLES["tags"], tags).to_pylist() == [{"id": "t1", "name": "VIP", "tag_group_id": "g1"}]
    campaigns = pa.table({"id": ["c1"], "name": ["Spring"], "updated_at": ["2026-01-03T00:00:00+00:00"]})
    with pytest.raises(CannotAdopt, match="do not hold column 'channel'"):
        adopt(TABLES["campaigns"], campaigns)
