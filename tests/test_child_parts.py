"""Child tables under change and failure (issue #20, item 9): a parent deleted while its children load is skipped
with a note (its children are gone with it), and a child table commits in parts (some parents at a time), so a
failure after a part keeps what was committed and the rerun reads only the parents still to do."""

from __future__ import annotations

import threading
import time

from klaviyo_sandbox.deletions import delete

from .conftest import http_get, http_post
from .helpers import assert_equals_truth, expected_rows, ingest, rows


def _listing(sb, resource: str) -> list[str]:
    """The parent ids in the order the client lists them (the listing's own query, every page)."""
    out, url = [], f"/api/{resource}?fields[{resource.rstrip('s')}]=id&page[size]=10"
    while url:
        doc = http_get(sb.base_url, url).json
        out += [r["id"] for r in doc["data"]]
        url = doc["links"].get("next")
    return out


def _when_children_are_asked(sb, endpoint: str, action) -> threading.Thread:
    """Run ``action`` once the sandbox has seen the first request of child ``endpoint``."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(name == endpoint for _, name, _ in list(sb.state.log)):
                action()
                return
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_parent_deleted_while_its_children_load_is_skipped_with_a_note(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off", latency_ms=40)
    db = str(tmp_path / "k.duckdb")
    # one parent at a time (--extract-parallelism 1), in the listing's order: the last of its first page (10 lists)
    # is listed before the first child request and asked for some ten requests later
    last = _listing(sb, "lists")[9]
    watcher = _when_children_are_asked(sb, "list-memberships", lambda: delete(sb.state, "lists", ids=[last]))
    assert ingest(sb, "list-memberships", db, "--extract-parallelism", "1") == 0
    watcher.join(5)
    assert sb.state.requests["status:404"] == 1  # the list was listed, then gone when its members were asked
    err = capsys.readouterr().err
    assert f"list {last} answered HTTP 404" in err and "skipped" in err
    assert_equals_truth(db, sb, "list-memberships")  # the truth after the deletion: the list's members are gone


def test_most_parents_answering_404_fail_the_table(make_sandbox, tmp_path, capsys):
    """404s from more than half of the parents are no deletions during a read (a wrong base_url or revision): the
    table fails with the API's answer instead of loading nothing and reporting success."""
    sb = make_sandbox(scale="tiny", rate_limits="off", latency_ms=40)
    db = str(tmp_path / "k.duckdb")
    every = _listing(sb, "lists")  # the first page (10) listed before the deletion: those are asked and answer 404
    watcher = _when_children_are_asked(sb, "list-memberships", lambda: delete(sb.state, "lists", ids=every))
    assert ingest(sb, "list-memberships", db, "--extract-parallelism", "1") == 1
    watcher.join(5)
    err = capsys.readouterr().err
    assert "parents answered HTTP 404: too many to have been deleted while the table was read" in err, err


def _child_asks(sb, endpoint: str) -> int:
    return sum(1 for _, name, _ in sb.state.log if name == endpoint)


def test_a_failure_after_a_part_keeps_the_committed_rows_and_the_rerun_goes_on(make_sandbox, tmp_path, capsys):
    sb = make_sandbox(scale="tiny", rate_limits="off")
    db = str(tmp_path / "k.duckdb")
    lists = len(_listing(sb, "lists"))  # 23; one page of members each (tiny)
    parts = ("--checkpoint-rows", "1000", "--extract-parallelism", "1")  # parts of 10 pages: 10 lists each
    http_post(sb.base_url, "/__sandbox/faults?spec=noid=1,after=16")  # a bad page in the second part: the table fails
    assert ingest(sb, "list-memberships", db, *parts) == 1
    err = capsys.readouterr().err
    assert "a record without an id" in err and "committed:" in err, err
    kept = rows(db, "list_memberships")
    want = expected_rows(sb, "list-memberships")
    assert 0 < len(kept) < len(want) and set(kept) <= set(
        want
    )  # what the committed parts hold (rows() refuses duplicates)
    done = {k[0] for k in kept}
    http_post(sb.base_url, "/__sandbox/faults?spec=")
    sb.state.log.clear()
    assert ingest(sb, "list-memberships", db, *parts) == 0
    assert "the last run stopped after" in capsys.readouterr().err
    asked = _child_asks(sb, "list-memberships")
    # a list whose page ended a part may have been counted done only with the next part: read again
    assert asked <= lists - len(done) + 1, f"{asked} lists asked again, {len(done)} were committed"
    assert_equals_truth(db, sb, "list-memberships")
    sb.state.log.clear()
    assert ingest(sb, "list-memberships", db, *parts) == 0  # the interval is done: the next run is incremental
    assert _child_asks(sb, "list-memberships") == lists
    assert all("greater-or-equal(joined_group_at," in q for _, n, q in sb.state.log if n == "list-memberships")


def test_the_sandbox_answers_404_for_a_deleted_parents_children_unless_switched(make_sandbox):
    for real in (True, False):
        sb = make_sandbox(scale="tiny", rate_limits="off", deleted_parent_404=real)
        gone, kept = _listing(sb, "lists")[:2]
        delete(sb.state, "lists", ids=[gone])
        answer = http_get(sb.base_url, f"/api/lists/{gone}/profiles")
        assert (answer.status, answer.json["errors"][0]["code"]) == (404, "not_found") if real else (
            answer.status == 200 and answer.json["data"] == [])  # fmt: skip
        assert http_get(sb.base_url, f"/api/lists/{kept}/profiles").status == 200
        assert http_get(sb.base_url, "/api/lists/nosuchid/profiles").status == 404
