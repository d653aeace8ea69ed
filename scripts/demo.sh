#!/usr/bin/env bash
# End to end: start the Klaviyo sandbox, load every table of `all` into demo.duckdb, run again incrementally.
# Fewer flows and tags than the small scale has: flow actions, messages and tag links are read one request per
# parent at 60/min.
set -euo pipefail
cd "$(dirname "$0")/.."
OMNI=.venv/bin/omniload
out=$(mktemp)
.venv/bin/klaviyo-sandbox --scale small,flows=30,flow-actions=90,flow-messages=60,tags=20 --seed 1 --rate-limits real >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.2; done
url=$(head -n1 "$out")
echo "sandbox at $url"
key="pk_demo000000000000000000000000000000"
$OMNI ingest --source-uri "klaviyo://?api_key=$key&base_url=$url" --source-table all \
  --dest-uri duckdb:///demo.duckdb --dest-table klaviyo.* --interval-start 2022-01-01 --extract-parallelism 8
echo "second run (incremental, nothing new):"
$OMNI ingest --source-uri "klaviyo://?api_key=$key&base_url=$url" --source-table events \
  --dest-uri duckdb:///demo.duckdb --dest-table klaviyo.events
.venv/bin/python - <<'PY'
import duckdb
con = duckdb.connect("demo.duckdb", read_only=True)
print(con.sql("select count(*) as events, min(datetime) as first, max(datetime) as last from klaviyo.events"))
PY
