"""Issue #23: overlapping runs into one folder (Delta or files), each loading its own table of one dataset. dlt's
filesystem destination keeps every pipeline's saved states in one folder (``<dataset>/_dlt_pipeline_state``) and,
after each load, deletes that pipeline's states beyond ``max_state_files``; a run of another table listing the
folder at that moment (dlt lists the names, then stats each) met a file just deleted and failed its table with
``DestinationUndefinedEntity`` (or, in the sync before a load, dlt swallowed it and restored no state: a files
table was read again from the start). Here the other run's clean-up is made to land exactly between a listing's names
and its stats (every listing of the state folder in the run under test), so the race happens on every run."""

from __future__ import annotations

import glob
from pathlib import Path
from urllib.parse import unquote

import pytest

from omniload.cli import main

from .conftest import http_post, source_uri
from .helpers import asked, assert_rows_equal_truth, key_of, row_key
from .test_lake import _read

STATE = "_dlt_pipeline_state"
OTHER = "omniload__kl__campaigns"  # the pipeline of the other run's table


def _states(root: Path, pipeline: str) -> list[Path]:
    """The pipeline's stored states, oldest first (dlt names them ``<pipeline>__<load id>__<hash>.jsonl``)."""
    found = [p for p in (root / "kl" / STATE).glob("*.jsonl") if p.name.split("__")[:-2] == pipeline.split("__")]
    return sorted(found, key=lambda p: p.name.rsplit("__", 2)[1])


def _run(sb, dest: str, table: str, *extra: str) -> int:
    return main(["ingest", "--source-uri", source_uri(sb), "--source-table", table, "--dest-uri", dest,
                 "--dest-table", f"kl.{table}", "--progress", "log", *extra])  # fmt: skip


def _rows(uri: str, folder: Path) -> dict[str, dict]:
    if uri.startswith("delta"):
        return _read("delta", folder)[0]
    import pyarrow.parquet as pq

    newest: dict = {}  # files append each version of a record: a reader takes each key's newest row
    for row in sorted(pq.read_table(folder).to_pylist(), key=lambda r: r["_dlt_load_id"]):
        newest[row_key(row, key_of(folder.name))] = row
    return newest


@pytest.mark.parametrize("uri", ["delta:///{dir}", "parquet:///{dir}"])
def test_another_runs_state_cleanup_during_a_listing_fails_nothing(make_sandbox, tmp_path, monkeypatch, uri):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    root = tmp_path / "lake"
    dest = uri.format(dir=root)
    assert _run(sb, dest, "profiles") == 0  # the table under test has a saved state before the race
    for _ in range(3):  # the other table's runs, each with something new: three saved states of its pipeline
        assert _run(sb, dest, "campaigns") == 0
        http_post(sb.base_url, "/__sandbox/season/step?seconds=3600")
    assert len(_states(root, OTHER)) >= 3

    real_glob = glob.glob
    cleaned: list[str] = []

    def glob_then_other_cleanup(pattern, *args, **kwargs):
        """dlt's listing of the state folder; right after it has the names, the other run deletes its oldest
        state (as its clean-up does once it keeps more than ``max_state_files``), while one is left."""
        names = real_glob(pattern, *args, **kwargs)
        theirs = _states(root, OTHER)
        if STATE in pattern and len(theirs) > 1 and str(theirs[0]) in names:
            theirs[0].unlink()
            cleaned.append(theirs[0].name)
        return names

    monkeypatch.setattr(glob, "glob", glob_then_other_cleanup)
    monkeypatch.setenv("DESTINATION__FILESYSTEM__MAX_STATE_FILES", "1")  # dlt's own clean-up stays on: bounded
    before, seen = _states(root, "omniload__kl__profiles"), len(asked(sb, "profiles"))
    assert _run(sb, dest, "profiles") == 0
    # from its saved cursor: every time filter has a lower bound (a sync that met the race restored no cursor)
    resumed = [q for q in map(unquote, asked(sb, "profiles")[seen:]) if "(updated," in q]
    assert resumed and all("greater-than(updated," in q for q in resumed), resumed
    assert cleaned, "the other run's clean-up landed inside a listing"
    assert_rows_equal_truth(_rows(uri, root / "kl" / "profiles"), sb, "profiles")
    after = _states(root, "omniload__kl__profiles")
    assert len(after) == 1 and after[0] not in before  # this run's state, the older one cleaned up by dlt
    assert len(_states(root, OTHER)) == 1  # the other pipeline's newest state is never removed
    monkeypatch.undo()
    assert _run(sb, dest, "campaigns") == 0  # and the other table's next run loads on from it
    assert_rows_equal_truth(_rows(uri, root / "kl" / "campaigns"), sb, "campaigns")
