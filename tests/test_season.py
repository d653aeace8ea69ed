"""A short season in CI: a simulated day of a changing account (late events, deletes and restores of every table the
season changes, members leaving, schema drift, a parent deleted mid-read), the real command run on a schedule
(``events`` alone between runs of every table, a daily reconcile) with an overlap, a kill and faults, the
destination equal to the truth after every clean run (tests/season.py; the 60-day season is bench/season.py)."""

from __future__ import annotations

import duckdb

from .season import LIFTS, DuckDest, Schedule, Season, run_season

KINDS = ["deleted " + n for n in ("profiles", "list-memberships", "segment-memberships", "segments", "flows",
         "campaigns", "catalog-items", "catalog-variants", "catalog-categories", "coupons", "coupon-codes")]  # fmt: skip


def test_a_short_season_on_duckdb_ends_equal_to_the_truth_after_every_clean_run(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    path = tmp_path / "season.duckdb"
    season = Season(sb, DuckDest(path), seed=23, kill_share=0, overlap_share=0, fault_share=0, period_s=6 * 3600,
                    forced={2: "overlap", 3: "kill", 4: "faults"})  # fmt: skip
    stats = run_season(season, days=1, schedule=Schedule(events_s=6 * 3600, main_s=12 * 3600))
    assert stats.mismatches == [], stats.mismatches[0]
    assert stats.kills == 1 and stats.overlaps == 1 and stats.faulted == 1 and stats.clean >= 3, (stats, season.log)
    assert stats.overlaps_clean == 1, season.log  # the second run waited for the first's DuckDB file, then checked
    for kind in [
        *KINDS,
        "updated coupons",
        "restored profiles",
        "drift new_attribute",
        "drift type_change",
        "parent deleted mid-read",
    ]:
        assert stats.changes.get(kind), (kind, stats.changes)
    assert season.check() is None  # and the final state too
    # the drift reached the copy: a new column, and a value of another type in its variant column
    con = duckdb.connect(str(path))
    try:
        assert con.execute("select count(*) from profiles where custom_preferred_store is not null").fetchone()[0]
        assert con.execute("select count(*) from profiles where custom_loyalty_points__v_json is not null").fetchone()[
            0
        ]
        # the check sees a wrong value, a row wrongly marked deleted, a lifted value gone
        for broken, table in (
            ("update list_memberships set _omniload_deleted_at = now() where rowid = "
             "(select min(rowid) from list_memberships where _omniload_deleted_at is null)", "list-memberships"),
            ("update coupon_codes set coupon_id = 'x'", "coupon-codes"),
            ("update profiles set custom_loyalty_points__v_json = null "
             "where custom_loyalty_points__v_json is not null", "profiles"),
        ):  # fmt: skip
            con.execute("begin")
            con.execute(broken)
            con.execute("commit")
            con.close()
            assert table in (season.check((table,)) or ""), broken
            con = duckdb.connect(str(path))
    finally:
        con.close()
    assert set(LIFTS) <= set(season.tables)


def test_sigterm_at_any_point_of_an_incremental_run_exits_143_not_an_abort(make_sandbox, tmp_path):
    """Found by the season: a SIGTERM while a DuckDB call ran surfaced as DuckDB's "connection is busy" (an internal
    error) and the interpreter's shutdown then aborted (-6, "FATAL: exception not rethrown") in about 1 of 12 stops."""
    import signal
    import subprocess
    import time

    from .conftest import OMNILOAD, ROOT, source_uri

    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    cmd = [*OMNILOAD, "ingest", "--source-uri", source_uri(sb), "--source-table", "events,profiles,lists",
           "--dest-uri", f"duckdb:///{tmp_path / 'x.duckdb'}", "--progress", "json", "--reconcile", "all"]  # fmt: skip
    assert subprocess.run(cmd, capture_output=True, cwd=ROOT).returncode == 0
    t0 = time.monotonic()
    assert subprocess.run(cmd, capture_output=True, cwd=ROOT).returncode == 0
    took = time.monotonic() - t0  # an incremental run: stop the next ones at points spread over its second half
    seen = []
    for delay in (took * f for f in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, 143, -signal.SIGTERM), err  # -15: stopped before the handler was installed
        assert "internal error" not in err and "FATAL" not in err, err
        seen.append(proc.returncode)
    assert 143 in seen, seen


def test_a_sigterm_during_an_import_stops_the_run_after_the_import_not_inside_it(tmp_path):
    """Found by the season (hourly schedule, seed 23, step 3): a SIGTERM that came while DuckDB's native module was
    being imported raised inside its initialisation and the interpreter aborted ("Critical nanobind error", exit
    -6). The stop is now remembered during an import and raised at the next check, after the import."""
    import subprocess
    import sys

    from .conftest import ROOT

    (tmp_path / "slow_native.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\ndone = True\n")
    code = (
        "import sys\nfrom omniload import signals\nfrom omniload.errors import Interrupted\nsignals.install()\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\nimport slow_native\nprint('imported', slow_native.done)\n"
        "try:\n    signals.check()\nexcept Interrupted as exc:\n    print('stopped', exc.signum)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["imported", "True", "stopped", "15"], (done.stdout, done.stderr)
