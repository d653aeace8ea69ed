"""Read a child table (an endpoint under each parent record): list the parent ids cheaply and page every
parent's endpoint through the generic extractor as the ids arrive, several parents at once within the child's
rate bucket.

The parent ids come from the parent's own endpoint with a one-field sparse fieldset and its largest page (a
parent that is itself a child, such as flow actions for flow messages, is listed the same way, recursively).
Only when the parent's cursor moves with its children (``Parent.follows_child``) are the parents limited to
those changed since the child's cursor; Klaviyo says so for none of the current tables, so every parent is
read on every run. Each parent gets a derived spec (its path filled in, its id as a constant column) run by
:func:`~.extract.run_plan` with the child's time bounds, so an incremental run asks each parent once. A child
whose parents go into a filter (coupon codes: ``any(coupon.id,[...])``) gets one derived spec per batch of parents;
one with kinds (tag links) one per parent and kind.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Iterator
from urllib.parse import quote

from .extract import Page, Plan, run_plan
from .spec import TableSpec

_DONE = object()


def listing(parent: TableSpec, fields: str, since: bool) -> TableSpec:
    """The cheapest read of a table's ids: one sparse field, the largest page, no extras; no cursor unless
    the listing is bounded by it (``since``)."""
    if since:
        fields = parent.cursor or fields
    else:
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
    return replace(spec, path=spec.path.replace("{kind}", kind), partitions=parts, kinds=(), bucket=f"{spec.rate_bucket}:{kind}")


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


def parent_ids(factory: Callable, spec: TableSpec, tables: dict[str, TableSpec], lo: datetime | None,
               hi: datetime, parallelism: int) -> Iterator[str]:  # fmt: skip
    """The ids of the parent records whose children ``spec`` must read, in the parent endpoint's order, each once,
    as the listing's pages arrive."""
    assert spec.parent is not None
    since = lo if spec.parent.follows_child else None
    lean = listing(tables[spec.parent.table], spec.parent.fields, since is not None)
    if lean.parent is not None:
        source = child_pages(factory, lean, tables, since, hi, parallelism)
    else:
        source = run_plan(factory, Plan(lean, since, hi, parallelism))
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
                parallelism: int, on_fraction: Callable[[float], None] | None = None) -> Iterator[Page]:  # fmt: skip
    """Pages of child table ``spec`` for the records with ``lo <= cursor < hi``, over every parent. The children
    of the first parents are read while the parents are still being listed: a parent listing of its own rate
    bucket (flow actions under flow messages) then costs no time beside the children's requests."""
    ids = parent_ids(factory, spec, tables, lo, hi, parallelism)
    assert spec.parent is not None
    specs: Iterator[TableSpec]
    if spec.parent.filter:  # parents named in the filter, a batch at a time
        specs = (for_batch(spec, batch) for batch in _batches(ids, max(1, spec.parent.batch)))
    else:
        kinds = [for_kind(spec, kind) for kind in spec.kinds] or [spec]
        specs = (for_parent(each, pid) for pid in ids for each in kinds)
    workers = max(1, min(parallelism, spec.burst))  # no more parents at once than the bucket's burst
    yield from _fan_out(factory, _closing(specs, ids), lo, hi, workers, on_fraction)


def _closing(items: Iterator[TableSpec], ids: Iterator[str]) -> Iterator[TableSpec]:
    """``items``, then (or when closed early) the parents' listing closed, in the thread that ran it."""
    try:
        yield from items
    finally:
        ids.close()  # type: ignore[attr-defined]


def _fan_out(factory: Callable, specs: Iterator[TableSpec], lo: datetime | None, hi: datetime, workers: int,
             on_fraction: Callable[[float], None] | None) -> Iterator[Page]:  # fmt: skip
    """Run one plan per spec on up to ``workers`` threads; yield their pages as they come (bounded queue).
    A listing thread takes the specs as ``specs`` yields them (the parents' listing, at its own bucket's pace,
    never held back by the children) into an unbounded queue (they are small), which the workers take from.
    The fraction done is reported once the listing has ended (every spec known)."""
    out: queue.Queue = queue.Queue(maxsize=workers * 4)
    todo: queue.Queue = queue.Queue()
    lock = threading.Lock()
    stop = threading.Event()
    count = {"done": 0, "known": 0, "listed": False}

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def list_all() -> None:
        try:
            for spec in specs:
                if stop.is_set():
                    return
                with lock:
                    count["known"] += 1
                todo.put(spec)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer (before the workers end)
            put(exc)
        finally:
            with lock:
                count["listed"] = True
            for _ in range(workers):
                todo.put(None)
            with contextlib.suppress(Exception):
                specs.close()  # type: ignore[attr-defined]

    def take() -> TableSpec | None:
        while not stop.is_set():
            try:
                return todo.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def work() -> None:
        try:
            while not stop.is_set():
                spec = take()
                if spec is None or stop.is_set():
                    return
                with closing(run_plan(factory, Plan(spec, lo, hi, 1))) as pages:
                    for page in pages:
                        put(page)
                        if stop.is_set():
                            return
                with lock:
                    count["done"] += 1
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            put(exc)
        finally:
            put(_DONE)

    lister = threading.Thread(target=list_all, name="children-listing", daemon=True)
    threads = [threading.Thread(target=work, name=f"children-{i}", daemon=True) for i in range(workers)]
    for t in (lister, *threads):
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            item = out.get()
            if item is _DONE:
                finished += 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
            if on_fraction is not None and count["listed"] and count["known"]:
                on_fraction(count["done"] / count["known"])
    finally:
        stop.set()
        for t in (*threads, lister):
            t.join(timeout=30)


__all__ = ["child_pages", "for_batch", "for_kind", "for_parent", "listing", "parent_ids"]
