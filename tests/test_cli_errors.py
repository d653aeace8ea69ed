"""Bad input: one clear line naming the bad value and what is allowed, exit code 2, nothing written."""

from __future__ import annotations

import os

import pytest

from .conftest import KEY, run_cli, source_uri


def _ingest_args(src: str, table: str, dest: str, *extra: str) -> list[str]:
    return ["ingest", "--source-uri", src, "--source-table", table, "--dest-uri", dest, *extra]


CASES = [
    (
        "unknown source scheme",
        lambda sb, db: _ingest_args("mailchimp://?key=1", "events", f"duckdb:///{db}"),
        ["unknown scheme 'mailchimp'", "klaviyo://"],
    ),
    (
        "unknown dest scheme",
        lambda sb, db: _ingest_args(source_uri(sb), "events", "oracle://x"),
        ["unknown scheme 'oracle'", "duckdb://"],
    ),
    (
        "no api key",
        lambda sb, db: _ingest_args(f"klaviyo://?base_url={sb.base_url}", "events", f"duckdb:///{db}"),
        ["needs an api_key"],
    ),
    (
        "unknown table",
        lambda sb, db: _ingest_args(source_uri(sb), "evnts", f"duckdb:///{db}"),
        ["unknown table 'evnts'", "catalog-variants", "templates"],
    ),
    (
        "end before start",
        lambda sb, db: _ingest_args(
            source_uri(sb),
            "events",
            f"duckdb:///{db}",
            "--interval-start",
            "2024-02-01",
            "--interval-end",
            "2024-01-01",
        ),
        ["is not after --interval-start"],
    ),
    (
        "bad date",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--interval-start", "01/02/2024"),
        ["cannot read '01/02/2024'", "YYYY-MM-DD"],
    ),
    (
        "sql in table name",
        lambda sb, db: _ingest_args(
            source_uri(sb), "events", f"duckdb:///{db}", "--dest-table", 'x.y"; drop table t; --'
        ),
        ["is not a valid identifier"],
    ),
    (
        "sql in schema name",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--dest-table", "a-b.events"),
        ["'a-b' is not a valid identifier"],
    ),
    (
        "directory as db",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{os.path.dirname(db)}"),
        ["is a directory"],
    ),
    (
        "missing folder",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}/nope/x.duckdb"),
        ["does not exist"],
    ),
    (
        "bad strategy",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--incremental-strategy", "upsert"),
        ["'upsert' is not allowed", "merge"],
    ),
    (
        "bad parallelism",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--extract-parallelism", "lots"),
        ["'lots' is not a number"],
    ),
    (
        "unreachable api",
        lambda sb, db: _ingest_args(
            f"klaviyo://?api_key={KEY}&base_url=http://127.0.0.1:9", "events", f"duckdb:///{db}"
        ),
        ["cannot reach 127.0.0.1:9", "refused"],
    ),
    (
        "wrong primary key",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--primary-key", "nope"),
        ["has no column 'nope'", "keyed by 'id'"],
    ),
    (
        "short api key",
        lambda sb, db: _ingest_args(source_uri(sb, "pk_123"), "events", f"duckdb:///{db}"),
        ["not a Klaviyo private API key", "pk_ followed by 34"],
    ),
    (
        "unicode api key",
        lambda sb, db: _ingest_args(source_uri(sb, "pk_" + "é" * 34), "events", f"duckdb:///{db}"),
        ["not a Klaviyo private API key"],
    ),
    (
        "huge api key",
        lambda sb, db: _ingest_args(source_uri(sb, "pk_" + "a" * 100_000), "events", f"duckdb:///{db}"),
        ["not a Klaviyo private API key", "100,003 characters"],
    ),
    (
        "docs placeholder key",
        lambda sb, db: _ingest_args(source_uri(sb, "YOUR_API_KEY"), "events", f"duckdb:///{db}"),
        ["not a Klaviyo private API key"],
    ),
    (
        "NUL in api key",
        lambda sb, db: _ingest_args(source_uri(sb, KEY[:-1] + "%00"), "events", f"duckdb:///{db}"),
        ["not a Klaviyo private API key"],
    ),
    (
        "nan parallelism",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--extract-parallelism", "nan"),
        ["'nan' is not a finite number"],
    ),
    (
        "inf parallelism",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--extract-parallelism", "inf"),
        ["'inf' is not a finite number"],
    ),
    (
        "nan checkpoint rows",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--checkpoint-rows", "nan"),
        ["--checkpoint-rows: 'nan' is not a finite number"],
    ),
    (
        "inf checkpoint rows",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--checkpoint-rows", "inf"),
        ["--checkpoint-rows: 'inf' is not a finite number"],
    ),
    (
        "nan max retry after",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--max-retry-after", "nan"),
        ["--max-retry-after: 'nan' is not a finite number"],
    ),
    (
        "api key twice",
        lambda sb, db: _ingest_args(source_uri(sb) + f"&api_key={KEY}", "events", f"duckdb:///{db}"),
        ["'api_key' is given more than once"],
    ),
    (
        "host in source uri",
        lambda sb, db: _ingest_args(f"klaviyo://a.klaviyo.com?api_key={KEY}", "events", f"duckdb:///{db}"),
        ["takes no host", "base_url="],
    ),
    (
        "interval start in the future",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--interval-start", "2999-01-01"),
        ["'2999-01-01' is in the future"],
    ),
    (
        "year one",
        lambda sb, db: _ingest_args(source_uri(sb), "events", f"duckdb:///{db}", "--interval-start", "0001-01-01"),
        ["is before 1970-01-01"],
    ),
    (
        "old revision",
        lambda sb, db: _ingest_args(source_uri(sb) + "&revision=2020-01-01", "events", f"duckdb:///{db}"),
        ["revision '2020-01-01' is not allowed", "2023-02-22"],
    ),
    (
        "path in base_url",
        lambda sb, db: _ingest_args(
            f"klaviyo://?api_key={KEY}&base_url={sb.base_url}/api", "events", f"duckdb:///{db}"
        ),
        ["with no path"],
    ),
    (
        "table named twice",
        lambda sb, db: _ingest_args(source_uri(sb), "tags,tags", f"duckdb:///{db}"),
        ["'tags' is named more than once"],
    ),
]

ENV_CASES = [
    ("progress from env", {"OMNILOAD_PROGRESS": "fancy"}, ["OMNILOAD_PROGRESS: 'fancy' is not allowed", "interactive"]),
    ("full refresh garbage", {"OMNILOAD_FULL_REFRESH": "sure"}, ["OMNILOAD_FULL_REFRESH: 'sure' is not allowed"]),
]


@pytest.mark.parametrize("label,env,fragments", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_bad_environment_values_exit_2_like_flags(sandbox, tmp_path, label, env, fragments):
    db = str(tmp_path / "out.duckdb")
    proc = run_cli(*_ingest_args(source_uri(sandbox), "tags", f"duckdb:///{db}"), env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), proc.stderr
    assert not os.path.exists(db)


def test_full_refresh_from_environment_is_case_insensitive(sandbox, tmp_path):
    db = str(tmp_path / "out.duckdb")
    assert (
        run_cli(*_ingest_args(source_uri(sandbox), "metrics", f"duckdb:///{db}", "--dest-table", "t")).returncode == 0
    )
    args = _ingest_args(source_uri(sandbox), "tags", f"duckdb:///{db}", "--dest-table", "t")
    assert run_cli(*args).returncode == 2  # t holds metrics: only a full refresh may reuse the name
    proc = run_cli(*args, env={"OMNILOAD_FULL_REFRESH": "TRUE"})
    assert proc.returncode == 0, proc.stderr


def test_dest_path_is_percent_decoded(sandbox, tmp_path):
    proc = run_cli(*_ingest_args(source_uri(sandbox), "tags", f"duckdb:///{tmp_path}/my%20dir.duckdb"))
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(tmp_path / "my dir.duckdb") and not os.path.exists(tmp_path / "my%20dir.duckdb")


def test_sandbox_port_in_use_is_one_line_exit_2():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = run_cli("sandbox", "klaviyo", "--port", str(port), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--port {port}: cannot listen" in lines[0], proc.stderr


@pytest.mark.parametrize("label,args,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(sandbox, tmp_path, label, args, fragments):
    db = str(tmp_path / "out.duckdb")
    proc = run_cli(*args(sandbox, db))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omniload: error: "), proc.stderr
    for frag in fragments:
        assert frag in lines[0]
    assert not os.path.exists(db) and not os.path.exists(db + ".lock")
    assert KEY not in proc.stderr + proc.stdout


def test_unwritable_file_is_refused(sandbox, tmp_path, monkeypatch, capsys):
    from omniload.cli import main

    db = tmp_path / "ro.duckdb"
    db.write_bytes(b"")
    db.chmod(0o444)
    if os.geteuid() == 0:  # root may write anything: make the OS answer as it would for an ordinary user
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: False if str(p) == str(db) and mode & os.W_OK else real_access(p, mode)
        )
    code = main(_ingest_args(source_uri(sandbox), "events", f"duckdb:///{db}"))
    assert code == 2 and "is not writable" in capsys.readouterr().err
    assert db.read_bytes() == b""


def test_flags_come_from_environment(sandbox, tmp_path):
    db = str(tmp_path / "env.duckdb")
    env = {"OMNILOAD_SOURCE_URI": source_uri(sandbox), "OMNILOAD_SOURCE_TABLE": "metrics",
           "OMNILOAD_DEST_URI": f"duckdb:///{db}", "OMNILOAD_PROGRESS": "json"}  # fmt: skip
    proc = run_cli("ingest", env=env)
    assert proc.returncode == 0, proc.stderr
    assert '"event": "summary", "table": "metrics", "status": "ok"' in proc.stdout


def test_help_lists_the_flags():
    proc = run_cli("ingest", "--help")
    assert proc.returncode == 0
    for flag in ("--source-uri", "--interval-start", "--extract-parallelism", "--full-refresh", "--progress"):
        assert flag in proc.stdout


def test_sandbox_command_prints_its_base_url_first_and_serves():
    import subprocess
    import sys

    from .conftest import ROOT, http_get

    proc = subprocess.Popen([sys.executable, "-m", "omniload.cli", "sandbox", "klaviyo", "--scale", "tiny", "--seed", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        resp = http_get(url, "/api/metrics")
        assert resp.status == 200 and resp.json["data"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sandbox_rejects_bad_options():
    proc = run_cli("sandbox", "klaviyo", "--scale", "huge")
    assert proc.returncode == 2 and "unknown scale 'huge'" in proc.stderr
    proc = run_cli("sandbox", "klaviyo", "--workers", "2")
    assert proc.returncode == 2 and "--rate-limits off" in proc.stderr


def test_version():
    from omniload import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"omniload {__version__}"
