"""What reconciling deletes costs per table: requests and seconds at Klaviyo's real limits, small and medium scale.

Computed, not run: the sandbox's record counts per scale (``klaviyo_sandbox.resources.SCALES``) go through the same
estimate the pipeline uses to decide (``sources.klaviyo.keys.scan_cost``): a page per ``page_size`` ids in each partition, plus
for a child table one request per parent and the parents' own listing; seconds at each bucket's steady limit.
``auto`` says whether the scan runs on every run (at most ``reconcile.AUTO_REQUESTS`` requests) or only with
``--reconcile``/``--reconcile-every``. Run: ``python bench/reconcile_cost.py``.
"""

from __future__ import annotations

from klaviyo_sandbox.resources import SCALES
from omniload.reconcile import AUTO_REQUESTS
from omniload.sources.klaviyo.keys import scan_cost, scannable
from omniload.sources.klaviyo.tables import TABLES


def rows(scale: str) -> list[tuple[str, int, int, float, str]]:
    counts = SCALES[scale]
    out = []
    for name, spec in TABLES.items():
        if not (scannable(spec) and spec.info.in_all):  # the tables of --source-table all that a scan reconciles
            continue
        groups = counts[spec.parent.table] if spec.parent is not None else counts[name]
        cost = scan_cost(spec, TABLES, counts[name], groups)
        out.append(
            (
                name,
                counts[name],
                cost.requests,
                cost.seconds,
                "every run" if cost.requests <= AUTO_REQUESTS else "asked",
            )
        )
    return out


def main() -> None:
    for scale in ("small", "medium"):
        print(f"\n{scale} scale")
        print("| table | rows | requests | seconds at real limits | reconciled |")
        print("|---|---:|---:|---:|---|")
        for name, n, requests, seconds, when in rows(scale):
            print(f"| {name} | {n:,} | {requests:,} | {seconds:,.1f} | {when} |")
    skipped = [n for n, s in TABLES.items() if s.info.in_all and not scannable(s)]
    print(f"\nnot scanned: {', '.join(skipped)} (events: marked by profile; the others are loaded whole each run)")


if __name__ == "__main__":
    main()
