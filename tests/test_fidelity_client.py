"""The client against the sandbox's real-like behaviours (docs/klaviyo-behaviour.md): late events, archived
flows, whole-second filters, no future filter datetimes, revisions, next links and proxies, Cloudflare
challenges, and records that move while a scan runs."""

from __future__ import annotations

import subprocess
import sys
import time

from .conftest import http_post, run_cli, source_uri
from .helpers import LoopbackServer, api_requests, assert_equals_truth, expected_rows, forward, ingest, rows


def test_late_events_inside_the_lookback_are_loaded_once(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=7)  # events show 30 s after they arrive, as Klaviyo's
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events", db) == 0
    first = len(rows(db, "events"))
    http_post(sb.base_url, "/__sandbox/events/late?count=25&before_seconds=7200")  # dated 2 h before now
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")  # ... and visible a minute later
    assert ingest(sb, "events", db) == 0  # the default lookback (1 day) re-reads them
    got = assert_equals_truth(db, sb, "events")  # all there, none twice (rows() fails on a duplicate id)
    assert len(got) >= first + 25
    http_post(sb.base_url, "/__sandbox/events/late?count=5&before_seconds=7200")
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=60")
    assert ingest(sb, "events", db, "--lookback", "30m") == 0  # outside a 30 minute lookback: not seen
    assert len(rows(db, "events")) == len(expected_rows(sb, "events")) - 5


def test_archived_flows_are_extracted_and_archiving_shows(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=2, archived_visible=False)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "flows", db) == 0
    got = assert_equals_truth(db, sb, "flows")
    assert any(r["archived"] for r in got.values()) and not all(r["archived"] for r in got.values())
    before = {i for i, r in got.items() if r["archived"]}
    http_post(sb.base_url, "/__sandbox/clock/advance?seconds=2592000")  # a month: some flows get archived
    assert ingest(sb, "flows", db) == 0
    after = {i for i, r in assert_equals_truth(db, sb, "flows").items() if r["archived"]}
    assert after > before


def test_whole_second_filters_lose_nothing_against_a_second_precision_server(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny,events=20000,profiles=3000", rate_limits="off", filter_precision="second", seed=9)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db, "--extract-parallelism", "12", "--checkpoint-rows", "2000") == 0
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")
    for *_, query in list(sb.state.log):
        assert ".000" not in query and "%3A00." not in query  # no fractional seconds were sent


def test_interval_end_after_the_servers_clock_is_capped_with_a_note(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", refuse_future_filters=True)  # its clock is months behind ours
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "events,campaigns,profiles",
                   "--dest-uri", f"duckdb:///{db}", "--interval-end", "2030-01-01", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        "--interval-end 2030-01-01T00:00:00+00:00 is after the API's clock; reading up to 2026-07-01T00:00:00+00:00"
        in proc.stderr
    )
    assert sb.state.requests["status:400"] == 0
    for name in ("events", "campaigns", "profiles"):
        assert_equals_truth(db, sb, name)


def test_revisions_deprecated_warn_once_and_retired_fail_clearly(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    proc = run_cli("ingest", "--source-uri", source_uri(sb) + "&revision=2025-04-15", "--source-table", "tags,coupons",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "log")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("API revision 2025-04-15 is retired on") == 1  # once per run, not per table
    proc = run_cli("ingest", "--source-uri", source_uri(sb) + "&revision=2024-02-15", "--source-table", "tags",
                   "--dest-uri", f"duckdb:///{db}", "--progress", "log")  # fmt: skip
    assert proc.returncode == 1 and "table 'tags': HTTP 410" in proc.stderr


def _proxy() -> LoopbackServer:
    """A real forwarding HTTP proxy on localhost (absolute-form requests), counting what passes through."""
    return LoopbackServer(lambda request: forward(request, str(request.url)))


def test_next_links_stay_on_base_url_and_proxies_are_honoured(make_sandbox, tmp_path):
    # the sandbox writes links on a public host nobody can reach: following them verbatim would fail
    sb = make_sandbox(scale="tiny,profiles=600", rate_limits="off", public_url="http://klaviyo.invalid:9")
    db = str(tmp_path / "k.duckdb")
    proxy = _proxy()
    env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "", "no_proxy": ""}
    proc = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "profiles", "--dest-uri", f"duckdb:///{db}",
                   "--extract-parallelism", "1", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert_equals_truth(db, sb, "profiles")
    assert proxy.seen >= api_requests(sb) >= 6  # every request, the preflight too, went through the proxy
    dead = run_cli("ingest", "--source-uri", source_uri(sb), "--source-table", "tags", "--dest-uri",
                   f"duckdb:///{tmp_path / 'x.duckdb'}", env={"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""})  # fmt: skip
    assert dead.returncode == 2 and "cannot reach" in dead.stderr and "HTTPS_PROXY" in dead.stderr


def test_cloudflare_challenges_are_retried_and_the_client_names_itself(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", faults="html403=0.15,html403_burst=2", seed=4)
    db = str(tmp_path / "k.duckdb")
    assert ingest(sb, "events,profiles", db) == 0
    assert sb.state.requests["fault:html403"] >= 1
    assert_equals_truth(db, sb, "events")
    assert_equals_truth(db, sb, "profiles")


def test_records_updated_during_a_long_scan_are_neither_lost_nor_duplicated(make_sandbox, tmp_path):
    # Klaviyo's cursors are keyset (sort value + id): a record updated mid-scan moves past the cursor and is
    # read again or by the next run; none is skipped (with offset cursors the rest would shift and be lost)
    sb = make_sandbox(scale="tiny,profiles=4000", rate_limits="off", latency_ms=40, cursor_mode="keyset", seed=12)
    db = str(tmp_path / "k.duckdb")
    args = [sys.executable, "-m", "omniload.cli", "ingest", "--source-uri", source_uri(sb), "--source-table", "profiles",
            "--dest-uri", f"duckdb:///{db}", "--extract-parallelism", "1"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while api_requests(sb) < 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(3):  # records change while the scan pages through them
        http_post(sb.base_url, "/__sandbox/clock/advance?seconds=3600")
        time.sleep(0.15)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert ingest(sb, "profiles", db) == 0  # the next run picks up what moved past the first one's end
    assert_equals_truth(db, sb, "profiles")
