"""A restored profile's events that the API hid while it was deleted (issue #23's last season mismatch): Klaviyo
serves them again after the restore with their old datetimes, older than the 7-day deep lookback, so no
incremental read finds them. The profiles reconcile that finds the profile back keeps its id in the destination
(destinations/rereads.py: DuckDB's ``_omniload_reread``; Delta: a dlt state of its own) and the next events load
reads ``equals(profile_id,"…")`` for it (reconcile.py, load.py ``TableLoad.reread``). The smallest reproduction:
3 CLI runs (tiny, seed 23), then one more events run; it fails on the code before."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from .conftest import http_post
from .helpers import expected_rows
from .test_deletes_dlt import current, run

DAY = 86_400


def by_profile(sb) -> int:
    """The requests the sandbox saw that filter events on one profile."""
    return sum(1 for _, _, q in list(sb.state.log) if "equals(profile_id" in unquote(str(q)))


@pytest.mark.parametrize("kind", ["duckdb", "delta"])
def test_a_restored_profile_brings_back_the_events_it_got_while_deleted(make_sandbox, tmp_path, kind):
    rereads = ["events", "event_attributions"] if kind == "duckdb" else ["events"]  # Delta: events alone (time)
    tables = ",".join(["profiles", *rereads])
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    assert run(sb, kind, tmp_path, tables) == 0
    victims = sorted(expected_rows(sb, "profiles"))[:60]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={','.join(victims)}")
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={9 * DAY}")
    assert run(sb, kind, tmp_path, tables, "--reconcile", "profiles") == 0
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={DAY}")
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={','.join(victims)}")
    assert run(sb, kind, tmp_path, tables, "--reconcile", "all") == 0
    assert run(sb, kind, tmp_path, ",".join(rereads)) == 0  # loads after the reconcile that kept the profiles

    truth = expected_rows(sb, "events")
    late = {k for k, e in truth.items() if e["profile_id"] in victims}
    got = current(kind, tmp_path, "events")
    assert late and late <= set(got), sorted(late - set(got))[:5]
    assert set(got) == set(truth) and not any(r.get("_omniload_deleted_at") for r in got.values())
    if "event_attributions" in rereads:  # it rides on events: their attributions came back with them
        missing = set(expected_rows(sb, "event_attributions")) - set(current(kind, tmp_path, "event_attributions"))
        assert not missing, sorted(missing)[:5]
    asked = by_profile(sb)
    # each restored profile read once per table (a page or two), then forgotten
    assert 60 * len(rereads) <= asked <= 120 * len(rereads), asked
    assert run(sb, kind, tmp_path, ",".join(rereads)) == 0
    assert by_profile(sb) == asked
