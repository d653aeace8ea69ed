"""A short season in CI: a few simulated days of a changing account (late events, deletes, restores), the real
command run on a schedule with an overlap, kills and faults, the destination equal to the truth after every clean
run (tests/season.py; the 60-day season is bench/season.py)."""

from __future__ import annotations

from .season import DuckDest, Season, run_season


def test_a_short_season_on_duckdb_ends_equal_to_the_truth_after_every_clean_run(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    season = Season(sb, DuckDest(tmp_path / "season.duckdb"), seed=23, kill_share=0.15, overlap_share=0.15, fault_share=0.15)
    stats = run_season(season, days=2, step_s=4 * 3600)
    assert stats.mismatches == [], stats.mismatches[0]
    assert stats.kills >= 1 and stats.overlaps >= 1 and stats.clean >= 5, (stats, season.log)
    assert season.check() is None  # and the final state too
