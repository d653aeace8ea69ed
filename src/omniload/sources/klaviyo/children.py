"""Read a child table (an endpoint under each parent record): list the parent ids cheaply and page every
parent's endpoint through the generic extractor as the ids arrive, several parents at once within the child's
rate bucket.

The parent ids come from the parent's own endpoint with a one-field sparse fieldset and its largest page (a
parent that is itself a child, such as flow actions for flow messages, is listed the same way, recursively).
Every parent is read on every run: a parent's cursor does not move when only its children change (Klaviyo
says so for none of the current tables), so it cannot tell which parents have new children. Each parent gets a derived spec (its path filled in, its id as a constant column) run by
:func:`~.extract.run_plan` with the child's time bounds, so an incremental run asks each parent once. A child
whose parents go into a filter (coupon codes: ``any(coupon.id,[...])``) gets one derived spec per batch of parents;
one with kinds (tag links) one per parent and kind.

A parent the listing named that answers 404 when its children are asked was deleted in between: its children
are gone with it, so it is skipped (``on_done`` says so) and the others load. More than half of the parents
(two at least) answering 404 is no deletion but a wrong request: the table fails with the API's answer.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ...errors import NotFound
from .extract import Page, Plan, run_plan
from .spec import TableSpec

_DONE = object()


class _Finished:
    """In the fan-out's queue after the last page of one parent: every page of ``parent`` was put before it."""

    def __init__(self, parent: str | None, gone: NotFound | None) -> None:
        self.parent, self.gone = parent, gone


def listing(parent: TableSpec, fields: str) -> TableSpec:
    """The cheapest read of a table's ids: one sparse field, the largest page, no extras, no cursor."""
    parent = replace(parent, cursor=None, lower_op=None, upper_op=None, sort=None)
    cols = {fields: parent.columns[fields]} if fields in parent.columns else {}
    params = {f"fields[{parent.resource_type}]": fields} if fields else {}
    return replace(parent, columns=cols, to_one=(), extra_params=params, primary_key=("id",), id_column="id")


def for_parent(spec: TableSpec, parent_id: str) -> TableSpec:
    """``spec`` for one parent record: the path filled in, the parent's id a constant column of every row."""
    assert spec.parent is not None and spec.parent_column
    col = spec.parent_column
    path = spec.path.replace("{" + spec.parent.key + "}", quote(parent_id, safe=""))
    parts = tuple((frag, {**consts, col: parent_id}) for frag, consts in spec.partitions)
    return replace(spec, path=path, partitions=parts, parent=None)


def for_kind(spec: TableSpec, kind: str) -> TableSpec:
    """``spec`` for one of its kinds: the path filled in, the kind a constant column, the endpoint's own bucket."""
    parts = tuple((frag, {**consts, "kind": kind}) for frag, consts in spec.partitions)
    return replace(
        spec, path=spec.path.replace("{kind}", kind), partitions=parts, kinds=(), bucket=f"{spec.rate_bucket}:{kind}"
    )


def for_batch(spec: TableSpec, parent_ids: list[str]) -> TableSpec:
    """``spec`` for a batch of parents named in its filter (``any(coupon.id,["a","b"])``); each row's parent
    comes from its own to-one relationship."""
    assert spec.parent is not None and spec.parent.filter
    values = ",".join('"' + pid.replace('"', '\\"') + '"' for pid in parent_ids)
    clause = f"any({spec.parent.filter},[{values}])"
    parts = tuple((",".join(p for p in (frag, clause) if p), consts) for frag, consts in spec.partitions)
    return replace(spec, partitions=parts, parent=None)


def _record_id(record: Any) -> str | None:
    return record.get("id") if isinstance(record, dict) else record.id


def parent_ids(factory: Callable, spec: TableSpec, tables: dict[str, TableSpec], hi: datetime,
               parallelism: int) -> Iterator[str]:  # fmt: skip
    """The ids of every parent record of ``spec``, in the parent endpoint's order, each once, as the listing's
    pages arrive."""
    assert spec.parent is not None
    lean = listing(tables[spec.parent.table], spec.parent.fields)
    if lean.parent is not None:
        source = child_pages(factory, lean, tables, None, hi, parallelism)
    else:
        source = run_plan(factory, Plan(lean, None, hi, parallelism))
    seen: set[str] = set()
    with closing(source):
        for page in source:
            for record in page.records:
                rid = _record_id(record)
                if rid and rid not in seen:
                    seen.add(rid)
                    yield rid


def _batches(ids: Iterator[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for pid in ids:
        batch.append(pid)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def child_pages(factory: Callable, spec: TableSpec, tables: dict[str, TableSpec], lo: datetime | None, hi: datetime,
                parallelism: int, on_fraction: Callable[[float], None] | None = None,
                on_done: Callable[[str, bool], None] | None = None, skip: frozenset[str] = frozenset()) -> Iterator[Page]:  # fmt: skip
    """Pages of child table ``spec`` for the records with ``lo <= cursor < hi``, over every parent but those in
    ``skip``. The children of the first parents are read while the parents are still being listed: a parent
    listing of its own rate bucket (flow actions under flow messages) then costs no time beside the children's
    requests. ``on_done(parent, gone)`` is called, between pages, once every page of a parent was yielded (gone:
    it answered 404 and was skipped)."""
    ids = parent_ids(factory, spec, tables, hi, parallelism)
    assert spec.parent is not None
    specs: Iterator[tuple[TableSpec, str | None]]
    if spec.parent.filter:  # parents named in the filter, a batch at a time
        specs = ((for_batch(spec, batch), None) for batch in _batches(ids, max(1, spec.parent.batch)))
    else:
        kinds = [for_kind(spec, kind) for kind in spec.kinds] or [spec]
        specs = ((for_parent(each, pid), pid) for pid in ids if pid not in skip for each in kinds)
    workers = max(1, min(parallelism, spec.burst))  # no more parents at once than the bucket's burst
    try:
        yield from _fan_out(factory, specs, lo, hi, workers, on_fraction, on_done or (lambda parent, gone: None))
    finally:
        with contextlib.suppress(ValueError):  # a worker that did not stop in time still runs it: it is a daemon
            ids.close()


def _fan_out(factory: Callable, specs: Iterator[tuple[TableSpec, str | None]], lo: datetime | None, hi: datetime,
             workers: int, on_fraction: Callable[[float], None] | None,
             on_done: Callable[[str, bool], None]) -> Iterator[Page]:  # fmt: skip
    """Run one plan per spec on up to ``workers`` threads, taking the specs as ``specs`` yields them (a worker
    waits for the next parent while the listing fetches it); yield their pages as they come (bounded queue).
    The fraction done is reported once every spec is known; a parent's 404 is its deletion (module docstring).

    The listing is pulled as the workers need parents, not read ahead in a thread of its own: where it shares a
    rate-limit bucket with another table of the run (flow messages' listing of flow actions and the flow-actions
    table), an eager listing took the bucket at full pace and stretched that table (measured at scale medium:
    flow-actions 634 s instead of 385 s, the whole account 1.20x instead of 1.12x its slowest table)."""
    out: queue.Queue = queue.Queue(maxsize=workers * 4)
    lock, counting = threading.Lock(), threading.Lock()
    stop = threading.Event()
    count = {"done": 0, "known": 0, "listed": False}

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:  # one worker at a time pulls the listing (a generator is not re-entrant)
                    item = None if count["listed"] or stop.is_set() else next(specs, None)
                    if item is None:
                        count["listed"] = True
                        return
                    count["known"] += 1
                if stop.is_set():  # stopped while this worker waited for the listing: nothing more is read
                    return
                spec, parent = item
                gone = None
                try:
                    with closing(run_plan(factory, Plan(spec, lo, hi, 1))) as pages:
                        for page in pages:
                            put(page)
                            if stop.is_set():
                                return
                except NotFound as exc:
                    if parent is None:  # no parent in the path: not a deletion
                        raise
                    gone = exc
                put(_Finished(parent, gone))
                with counting:
                    count["done"] += 1
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            put(exc)
        finally:
            put(_DONE)

    threads = [threading.Thread(target=work, name=f"children-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    finished = asked = 0
    gone: list[NotFound] = []
    try:
        while finished < len(threads):
            item = out.get()
            if item is _DONE:
                finished += 1
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Finished):
                asked += 1
                if item.gone is not None:
                    gone.append(item.gone)
                if item.parent is not None:
                    on_done(item.parent, item.gone is not None)
                continue
            yield item
            if on_fraction is not None and count["listed"] and count["known"]:
                on_fraction(count["done"] / count["known"])
        if len(gone) >= 2 and 2 * len(gone) > asked:
            raise NotFound(f"{gone[0]} ({len(gone)} of {asked} parents answered HTTP 404: too many to have been deleted "
                           "while the table was read; check base_url and revision)")  # fmt: skip
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


__all__ = ["child_pages", "for_batch", "for_kind", "for_parent", "listing", "parent_ids"]
