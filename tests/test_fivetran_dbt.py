"""``layout=fivetran``: the sandbox loaded into DuckDB, then Fivetran's own dbt package for Klaviyo (dbt_klaviyo
v1.4.1, unmodified) built over it: every model built, every dbt test passed, the end models non-empty, and the
campaigns' and flows' revenue and counts equal to the sandbox's attribution."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import duckdb

from klaviyo_sandbox import testing as truth
from omniload.cli import main

from .conftest import source_uri
from .dbt_project import build, duckdb_profile, model_names, postgres_profile
from .helpers import sandbox_now

START = "2015-01-01"
END_MODELS = (
    "klaviyo__events",
    "klaviyo__persons",
    "klaviyo__campaigns",
    "klaviyo__flows",
    "klaviyo__person_campaign_flow",
)
REVENUE = (
    "placed order",
    "ordered product",
)  # of dbt_klaviyo's default klaviyo__sum_revenue_metrics, those the sandbox has
COUNTED = ("placed order", "ordered product", "opened email", "clicked email", "received email")


def _start() -> datetime:
    return datetime.fromisoformat(START).replace(tzinfo=UTC)


def _expected(sb) -> dict[str, dict[str, tuple]]:
    """campaign or flow id -> (revenue per REVENUE metric, count per COUNTED metric), from the sandbox's own
    attribution resources (not the events' properties the views read)."""
    start, end = _start(), sandbox_now(sb)
    names = {m["id"]: m["attributes"]["name"].lower() for m in truth.records(sb.state, "metrics")}
    touch = {}
    for a in truth.records(sb.state, "event_attributions", start, end):
        rels = a["relationships"]
        owner = (rels.get("campaign") or {}).get("data") or (rels.get("flow") or {}).get("data")
        touch[rels["event"]["data"]["id"]] = owner["id"]
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in truth.records(sb.state, "events", start, end):
        owner = touch.get(e["id"])
        if owner is None:
            continue
        name = names[e["relationships"]["metric"]["data"]["id"]]
        counts[owner][name] += 1
        value = e["attributes"]["event_properties"].get("$value")
        if name in REVENUE and value is not None:
            revenue[owner][name] += Decimal(str(value))
    out = {k: (tuple(revenue[k][m] for m in REVENUE), tuple(counts[k][m] for m in COUNTED)) for k in counts}
    return {k: v for k, v in out.items() if any(v[1])}  # as _got: those with a counted event


def _query(con, sql: str) -> list[tuple]:
    cur = con.cursor()  # DuckDB and psycopg2 alike
    cur.execute(sql)
    return cur.fetchall()


def _got(con, model: str, key: str) -> dict[str, tuple]:
    rev = ", ".join(f"coalesce(sum_revenue_{m.replace(' ', '_')}, 0)" for m in REVENUE)
    cnt = ", ".join(f"coalesce(count_{m.replace(' ', '_')}, 0)" for m in COUNTED)
    out = {}
    for row in _query(con, f"select {key}, {rev}, {cnt} from main_klaviyo.{model}"):
        revenue, counts = (
            tuple(Decimal(v) for v in row[1 : 1 + len(REVENUE)]),
            tuple(int(v) for v in row[1 + len(REVENUE) :]),
        )
        if any(counts):
            out[row[0]] = (revenue, counts)
    return out


def _load(sandbox, dest_uri: str) -> None:
    uri = source_uri(sandbox) + "&layout=fivetran"
    code = main(["ingest", "--source-uri", uri, "--source-table", "events,metrics,profiles,campaigns,flows,campaign-messages",
                 "--dest-uri", dest_uri, "--dest-table", "klaviyo.*", "--interval-start", START, "--progress", "log"])  # fmt: skip
    assert code == 0


def _assert_built(proc, results, con) -> None:
    """Every model of the package built, every dbt test passed, no warning, the end models non-empty."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Done. PASS=" in proc.stdout and " WARN=0 ERROR=0 SKIP=0" in proc.stdout, proc.stdout[-2000:]
    built = {
        r["unique_id"].split(".")[-1]
        for r in results
        if r["unique_id"].startswith("model.") and r["status"] == "success"
    }
    assert built == model_names()  # every model of the package, none missing
    tests = [r for r in results if r["unique_id"].startswith("test.")]
    assert tests and all(r["status"] == "pass" for r in tests)
    for model in END_MODELS:  # a missing source table would give an empty model with only a warning
        assert _query(con, f"select count(*) from main_klaviyo.{model}")[0][0] > 0, model


def test_dbt_klaviyo_builds_on_the_fivetran_layout_and_equals_the_sandbox(sandbox, tmp_path):
    db = str(tmp_path / "k.duckdb")
    _load(sandbox, f"duckdb:///{db}")
    proc, results = build(tmp_path, duckdb_profile(db), "klaviyo")
    with duckdb.connect(db, read_only=True) as con:
        _assert_built(proc, results, con)
        rows = con.execute("select count(*) from main_klaviyo.klaviyo__events").fetchall()[0][0]
        assert rows == len(truth.records(sandbox.state, "events", _start(), sandbox_now(sandbox)))
        # the well-known properties, in their own columns by default, equal the events' own
        got = {r[0]: r[1:] for r in con.execute("select id, property_value, property_event_id, property_message, "
                                                "property_flow from klaviyo.events").fetchall()}  # fmt: skip
        known = {}
        for e in truth.records(sandbox.state, "events", _start(), sandbox_now(sandbox)):
            p = e["attributes"]["event_properties"]
            known[e["id"]] = (p.get("$value"), p.get("$event_id"), p.get("$message"), p.get("$flow"))
        assert got == known
        expected = _expected(sandbox)
        campaigns = _got(con, "klaviyo__campaigns", "campaign_id")
        flows = _got(con, "klaviyo__flows", "flow_id")
    assert campaigns and flows
    assert {**campaigns, **flows} == expected


def test_dbt_klaviyo_builds_on_the_fivetran_layout_in_postgres(sandbox, postgres, tmp_path):
    """The same views in PostgreSQL: every model and test; counts equal the sandbox's attribution (revenue is not
    compared: dbt_klaviyo's postgres try_cast to numeric reads only integer strings, an upstream issue)."""
    postgres.create_database("kl_fivetran")
    _load(sandbox, postgres.uri("kl_fivetran"))
    proc, results = build(tmp_path, postgres_profile(postgres, "kl_fivetran"), "klaviyo")
    con = postgres.connect("kl_fivetran")
    try:
        _assert_built(proc, results, con)
        got = {**_got(con, "klaviyo__campaigns", "campaign_id"), **_got(con, "klaviyo__flows", "flow_id")}
    finally:
        con.close()
    assert got and {k: v[1] for k, v in got.items()} == {k: v[1] for k, v in _expected(sandbox).items()}
    # the next run keeps the views the package's staging views read (PostgreSQL would not drop them), and it builds
    _load(sandbox, postgres.uri("kl_fivetran"))
    proc, _ = build(tmp_path / "again", postgres_profile(postgres, "kl_fivetran"), "klaviyo")
    assert proc.returncode == 0, proc.stdout[-3000:]
