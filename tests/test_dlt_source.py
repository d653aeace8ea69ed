"""The Klaviyo source used from a plain dlt pipeline, as a dlt user would, against the sandbox."""

from __future__ import annotations

import dlt
import duckdb

from omniload.sources.klaviyo import klaviyo_source

from .conftest import KEY, http_post
from .helpers import assert_rows_equal_truth, by_id


def _rows(db: str, table: str) -> dict[str, dict]:
    con = duckdb.connect(db, read_only=True)
    try:
        return by_id(con.execute(f'select * from klaviyo."{table}"'), table)
    finally:
        con.close()


def test_plain_dlt_pipeline_loads_then_continues_incrementally(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=5)
    db = str(tmp_path / "dlt.duckdb")
    pipeline = dlt.pipeline("kl_dlt_test", destination=dlt.destinations.duckdb(db), dataset_name="klaviyo",
                            pipelines_dir=str(tmp_path / "pipelines"))  # fmt: skip
    tables = ["events", "tags", "catalog-items"]
    pipeline.run(klaviyo_source(api_key=KEY, tables=tables, base_url=sb.base_url))
    for name in tables:
        assert_rows_equal_truth(_rows(db, name.replace("-", "_")), sb, name)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    before = sb.state.requests["total"]
    info = pipeline.run(klaviyo_source(api_key=KEY, tables=["events"], base_url=sb.base_url))
    assert not info.has_failed_jobs
    assert_rows_equal_truth(_rows(db, "events"), sb, "events")  # merged: new events added, none duplicated
    assert sb.state.requests["total"] - before < 10  # read from the saved cursor, not from the beginning
