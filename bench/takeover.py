"""Switching from ingestr (issue #27): the first omniload run into an events table ingestr made, a day later,
against a first omniload run into an empty file (what a switch costs without the takeover).

The ingestr-made table is built as tests/test_takeover.py builds it (dlt, ingestr's pipeline name and layout,
records fetched as ingestr's client fetches them, with the current revision).

Usage: python bench/takeover.py [--events 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
import urllib.request

from common import KEY, PY, Sandbox, machine, run_measured


def fetch_like_ingestr(url: str) -> list[dict]:
    out, link = [], f"{url}/api/events?sort=-datetime"
    while link:
        req = urllib.request.Request(
            link, headers={"Authorization": f"Klaviyo-API-Key {KEY}", "revision": "2026-07-15"}
        )
        with urllib.request.urlopen(req) as r:
            doc = json.loads(r.read())
        for rec in doc["data"]:
            rec.update(rec.pop("attributes"))
            out.append(rec)
        link = (doc.get("links") or {}).get("next")
    return out


def ingestr_made(url: str, db: str, tmp: str) -> int:
    import dlt

    records = fetch_like_ingestr(url)

    def rows(incremental=None):
        yield records

    resource = dlt.resource(rows, name="events", write_disposition="merge", primary_key="id")
    resource.apply_hints(incremental=dlt.sources.incremental("datetime", "2000-01-01T00:00:00Z"))
    source = dlt.source(lambda: resource, name="klaviyo_source", max_table_nesting=0)()
    pipeline = dlt.pipeline(pipeline_name=hashlib.sha256(b"klaviyo.events").hexdigest(),
                            destination=dlt.destinations.duckdb(db), pipelines_dir=tmp)  # fmt: skip
    pipeline.run(source, dataset_name="klaviyo", table_name="events", loader_file_format="parquet")
    return len(records)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=200_000)
    args = p.parse_args()
    print(machine())
    with (
        Sandbox("--scale", f"tiny,events={args.events}", "--rate-limits", "off") as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        made = ingestr_made(sb.url, f"{tmp}/ingestr.duckdb", tmp)
        urllib.request.urlopen(
            urllib.request.Request(f"{sb.url}/__sandbox/clock/advance?seconds=86400", method="POST", data=b"")
        )
        src = f"klaviyo://?api_key={KEY}&base_url={sb.url}"
        for label, db in (
            ("takeover of ingestr's table", "ingestr.duckdb"),
            ("first run into an empty file", "empty.duckdb"),
        ):
            r = run_measured([PY, "-m", "omniload.cli", "ingest", "--source-uri", src, "--source-table", "events",
                              "--dest-uri", f"duckdb:///{tmp}/{db}", "--dest-table", "klaviyo.events", "--progress", "log"])  # fmt: skip
            fetched = re.search(r"\[events\] finish: .*\((\d[\d,]*) fetched\)", r["stderr"])
            print(
                f"{label}: rc {r['rc']}, {r['seconds']:.1f} s, {fetched.group(1) if fetched else '?'} events fetched, "
                f"peak RSS {r['peak_mb']:.0f} MB (ingestr's table: {made:,} events)"
            )


if __name__ == "__main__":
    main()
