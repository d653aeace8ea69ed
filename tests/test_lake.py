"""Open table formats that merge in place (issue #16 items 8-9): Delta and Iceberg tables in a folder and Delta
tables in an S3-compatible bucket (a local moto server), read back with the deltalake / pyiceberg readers and
compared with the sandbox after a backfill and after a clock advance (merged, not appended)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .conftest import http_post, run_cli, source_uri
from .helpers import assert_rows_equal_truth, by_id

TABLES = "events,profiles,campaigns,tags"


class _Cursor:
    """Arrow rows as a DB-API cursor, for ``by_id`` (which fails on a duplicate id)."""

    def __init__(self, table) -> None:
        self.description = [(n,) for n in table.column_names]
        self._rows = [tuple(r.values()) for r in table.to_pylist()]

    def fetchall(self):
        return self._rows


def _delta(path: str, storage_options: dict | None = None):
    from deltalake import DeltaTable

    return DeltaTable(path, storage_options=storage_options)


def _iceberg(folder: Path):
    from pyiceberg.table import StaticTable

    metadata = sorted((folder / "metadata").glob("*.metadata.json"))[-1]
    return StaticTable.from_metadata(str(metadata))


def _read(fmt: str, folder: Path) -> tuple[dict[str, dict], int]:
    """Rows by id and how many versions (Delta) / snapshots (Iceberg) the table has kept."""
    if fmt == "delta":
        table = _delta(str(folder))
        return by_id(_Cursor(table.to_pyarrow_table()), folder.name), len(table.history())
    table = _iceberg(folder)
    return by_id(_Cursor(table.scan().to_arrow()), folder.name), len(table.snapshots())


def _ingest(sb, dest: str, *extra: str, env: dict | None = None):
    return run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", TABLES, "--dest-uri", dest,
                   "--progress", "log", *extra, env=env)  # fmt: skip


@pytest.mark.parametrize("uri", ["delta:///{dir}", "iceberg:///{dir}", "parquet:///{dir}?table_format=delta"])
def test_table_formats_merge_in_place_and_keep_history(make_sandbox, tmp_path, uri):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=21)
    fmt = "iceberg" if "iceberg" in uri else "delta"
    dest = uri.format(dir=tmp_path / "lake")
    proc = _ingest(sb, dest, "--dest-table", "kl.*")
    assert proc.returncode == 0, proc.stderr
    for name in TABLES.split(","):
        got, _ = _read(fmt, tmp_path / "lake" / "kl" / name)
        assert_rows_equal_truth(got, sb, name)
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    proc = _ingest(sb, dest, "--dest-table", "kl.*")
    assert proc.returncode == 0, proc.stderr
    for name in TABLES.split(","):
        got, versions = _read(fmt, tmp_path / "lake" / "kl" / name)
        assert_rows_equal_truth(got, sb, name)  # one row per id: merged, not appended
        assert versions >= 2, f"{name}: {versions} versions"


def test_delta_partitioned_by_a_column(sandbox, tmp_path):
    proc = run_cli("ingest", "--source-uri", source_uri(sandbox), "--source-table", "campaigns", "--dest-uri",
                   f"delta:///{tmp_path}", "--dest-table", "kl.campaigns", "--partition-by", "channel")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "kl" / "campaigns"
    assert {p.name for p in folder.iterdir() if p.name.startswith("channel=")} == {
        "channel=email",
        "channel=sms",
        "channel=mobile_push",
    }
    assert _delta(str(folder)).metadata().partition_columns == ["channel"]
    got, _ = _read("delta", folder)
    assert_rows_equal_truth(got, sandbox, "campaigns")


@pytest.fixture
def s3_server():
    """A local S3-compatible server (moto) in a child process (deltalake's reader holds the GIL while it waits for
    the server: a server thread in this process would never answer), on 127.0.0.1 only, with one bucket."""
    import subprocess
    import sys
    import time

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIATEST", aws_secret_access_key="s3-S3cret-Key",
                 region_name="us-east-1").create_bucket(Bucket="lake")  # fmt: skip
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


def test_delta_tables_in_an_s3_bucket(make_sandbox, s3_server):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=22)
    secret = "s3-S3cret-Key"
    dest = f"s3://lake/klaviyo?table_format=delta&endpoint_url={s3_server}&access_key_id=AKIATEST&secret_access_key={secret}"
    proc = _ingest(sb, dest, "--dest-table", "kl.*")
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stderr + proc.stdout
    options = {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": secret,
               "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}  # fmt: skip
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=86400")
    # the second run takes its credentials from the environment
    env = {"AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": s3_server}
    proc = _ingest(sb, "s3://lake/klaviyo?table_format=delta", "--dest-table", "kl.*", env=env)
    assert proc.returncode == 0, proc.stderr
    for name in TABLES.split(","):
        table = _delta(f"s3://lake/klaviyo/kl/{name}", options)
        assert_rows_equal_truth(by_id(_Cursor(table.to_pyarrow_table()), name), sb, name)
        assert len(table.history()) >= 2
    # a bucket that does not exist fails the tables with the secret redacted
    proc = _ingest(sb, dest.replace("s3://lake/", "s3://no-such-bucket/"), "--dest-table", "kl.*", "--debug")
    assert proc.returncode != 0 and secret not in proc.stderr + proc.stdout, proc.stderr


def test_a_delta_load_does_not_sleep_on_dlts_finalized_jobs(make_sandbox, tmp_path, monkeypatch):
    """dlt's loader waits for a job on a semaphore with a timeout (1 s; 30 s here) that only a job run in a thread
    releases; a Delta table's file and state jobs never run (finalized), so every load slept the whole timeout
    (wakeup.py). A load and a reconcile of two tables with a 30 s timeout end well within it."""
    import time

    from dlt.load.load import Load

    from omniload.cli import main

    init = Load.__init__

    def slow_poll(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._run_loop_sleep_duration = 30.0

    monkeypatch.setattr(Load, "__init__", slow_poll)
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=24)
    started = time.monotonic()
    code = main(["ingest", "--source-uri", source_uri(sb), "--source-table", "campaigns,tags", "--dest-uri",
                 f"delta:///{tmp_path}", "--dest-table", "kl.*", "--progress", "log", "--reconcile", "all"])  # fmt: skip
    assert code == 0
    assert time.monotonic() - started < 25  # each load would sleep 30 s
    for name in ("campaigns", "tags"):
        got, _ = _read("delta", tmp_path / "kl" / name)
        assert_rows_equal_truth(got, sb, name)


def test_a_delta_run_with_nothing_new_writes_no_version(make_sandbox, tmp_path):
    """A run whose lookback holds only rows the Delta table has (same key, same cursor) loads nothing and commits
    nothing (``Lake.already_loaded``), as on DuckDB: no new table version. A record changed since is loaded."""
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=25)
    dest = f"delta:///{tmp_path}"
    tables = ("events", "profiles", "campaigns")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", ",".join(tables), "--dest-uri", dest,
                   "--dest-table", "kl.*", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    versions = {t: len(_delta(str(tmp_path / "kl" / t)).history()) for t in tables}
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", ",".join(tables), "--dest-uri", dest,
                   "--dest-table", "kl.*", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in tables:
        assert len(_delta(str(tmp_path / "kl" / name)).history()) == versions[name], name
        got, _ = _read("delta", tmp_path / "kl" / name)
        assert_rows_equal_truth(got, sb, name)
    http_post(sb.base_url, "/__sandbox/season/step?seconds=3600")  # new and updated records of every table
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", ",".join(tables), "--dest-uri", dest,
                   "--dest-table", "kl.*", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in tables:
        got, _ = _read("delta", tmp_path / "kl" / name)
        assert_rows_equal_truth(got, sb, name)


def test_a_delta_tables_state_and_pipeline_are_what_the_destination_stores(make_sandbox, tmp_path):
    """The saved state read from the newest state file is the one dlt's sync restores; the reconcile's pipeline of a
    table is synced once and reused while the stored state and schema stay, and synced again once another run
    stored a new one."""
    from omniload.destinations import parse_destination
    from omniload.destinations.base import Destination
    from omniload.destinations.state import pipeline_name, resource_state

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=26)
    dest_uri = f"delta:///{tmp_path}"

    def ingest():
        proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "campaigns", "--dest-uri", dest_uri,
                       "--dest-table", "kl.campaigns", "--progress", "log")  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    ingest()
    dest = parse_destination(dest_uri)
    try:
        name = pipeline_name("kl", "campaigns")
        import dlt

        probe = dlt.pipeline(pipeline_name=name, destination=dest.dlt_destination(), dataset_name="kl",
                             pipelines_dir=str(tmp_path / "probe"), progress=None)  # fmt: skip
        synced = Destination.saved_state(dest, name, "kl", lambda: probe)
        assert resource_state(dest.saved_state(name, "kl", lambda: None), "campaigns") == resource_state(
            synced, "campaigns"
        )
        assert resource_state(synced, "campaigns").get("last_value")
        assert dest.saved_state(name + "__other", "kl", lambda: None) == {}  # no state of that name: nothing
        first = dest._pipe("kl", "campaigns")
        assert dest._pipe("kl", "campaigns") is first  # nothing stored since: not synced again
        before = resource_state(first.state, "campaigns")["last_value"]
        http_post(sb.base_url, "/__sandbox/season/step?seconds=3600")
        ingest()  # another process stores a new state (a newer cursor)
        again = dest._pipe("kl", "campaigns")
        after = resource_state(again.state, "campaigns")["last_value"]
        assert after != before
        assert after == resource_state(dest.saved_state(name, "kl", lambda: None), "campaigns")["last_value"]
    finally:
        dest.close()
