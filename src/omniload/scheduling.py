"""Run a run's tables side by side: groups of tables (those sharing a rate limit) one after another within a
group, up to N groups at once, the heaviest first. Generic: it knows neither sources nor destinations."""

from __future__ import annotations

import threading

from .signals import check as check_interrupted


def heaviest_first(groups: list[list], weight) -> list[list]:
    """The groups by their summed weight, heaviest first (ties keep their order): with fewer workers than
    groups, the longest work starts at once and the short tables fill the gaps (longest-processing-time first)."""
    return sorted(groups, key=lambda group: -sum(weight(item) for item in group))


def run_groups(groups: list[list], workers: int, run_one) -> None:
    """Run each group's items in order, up to ``workers`` groups at once in daemon threads (the main thread
    stays free for Ctrl-C, and a stopped run does not wait for them). One worker: all in this thread."""
    if workers <= 1:
        for group in groups:
            for item in group:
                run_one(item)
        return
    pending = list(groups)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                group = pending.pop(0)
            try:
                for item in group:
                    run_one(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker, name=f"tables-{n}", daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
            check_interrupted()
    if errors:
        raise errors[0]
