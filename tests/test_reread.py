"""A restored profile's events that the API hid while it was deleted (issue #23's last season mismatch): Klaviyo
serves them again after the restore with their old datetimes, older than the 7-day deep lookback, so no
incremental read finds them. The profiles reconcile that finds the profile back keeps its id in the destination
(``_omniload_reread``) and the next events load reads ``equals(profile_id,"…")`` for it (reconcile.py, load.py
``TableLoad.reread``). The smallest reproduction: 3 CLI runs (DuckDB, tiny, seed 23), then one more events run."""

from __future__ import annotations

from .conftest import http_post
from .helpers import expected_rows
from .test_deletes import Dest

DAY = 86_400


def test_a_restored_profile_brings_back_the_events_it_got_while_deleted(make_sandbox, tmp_path):
    sb = make_sandbox(scale="tiny", rate_limits="off", seed=23)
    dest = Dest("duckdb", tmp_path)
    assert dest.ingest(sb, "profiles,events", "kl.*") == 0
    victims = sorted(expected_rows(sb, "profiles"))[:60]
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&ids={','.join(victims)}")
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={9 * DAY}")
    assert dest.ingest(sb, "profiles,events", "kl.*", "--reconcile", "profiles") == 0
    http_post(sb.base_url, f"/__sandbox/clock/advance?seconds={DAY}")
    http_post(sb.base_url, f"/__sandbox/delete?resource=profiles&restore=1&ids={','.join(victims)}")
    assert dest.ingest(sb, "profiles,events", "kl.*", "--reconcile", "all") == 0
    assert dest.ingest(sb, "events", "kl.*") == 0  # the events load after the reconcile that kept them

    truth = expected_rows(sb, "events")
    late = {k for k, e in truth.items() if e["profile_id"] in victims}
    got = dest.marks("events", "events")
    assert late and late <= set(got), sorted(late - set(got))[:5]
    assert set(got) == set(truth) and not any(got.values())
    assert dest.sql("select count(*) from kl._omniload_reread")[0][0] == 0  # read, then forgotten
