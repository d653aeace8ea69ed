"""``properties=columns``: event properties as ``property_<name>`` columns (profiles' as ``custom_<name>``), evolving
across runs whose events gain, lose and change properties, never failing and never losing a value; and the cap.

The sandbox's events pass through a proxy (real HTTP) that gives each event, by its time, the properties of an
account whose tracking changed at ``mid``: before, ``Shoe Size`` is a number and ``level`` is set; after,
``Shoe Size`` is text (``"42 EU"``), ``level`` is gone and ``gift`` is new."""

from __future__ import annotations

import json
from datetime import datetime

import dlt
import duckdb
import pytest
from aiohttp import web

from klaviyo_sandbox import testing as truth
from omniload.cli import main
from omniload.sources.klaviyo import klaviyo_source
from omniload.sources.klaviyo.lift import VARIANT, column_name

from .conftest import KEY
from .helpers import LoopbackServer, forward, sandbox_now

START = "2015-01-01"


def _reshape(props: dict, late: bool) -> dict:
    if late:
        return {**props, "Shoe Size": "42 EU", "gift": True}
    return {**props, "Shoe Size": 42, "level": 3}


def _proxy(sb, change) -> LoopbackServer:
    """``sb``'s events through a proxy giving each the properties ``change(its properties, its datetime)``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = await forward(request, f"{sb.base_url}{request.path_qs}")
        if request.path.rstrip("/") != "/api/events" or answer.status != 200:
            return answer
        doc = json.loads(answer.body)
        for e in doc["data"]:
            attrs = e["attributes"]
            attrs["event_properties"] = change(attrs["event_properties"] or {}, attrs["datetime"])
        return web.Response(status=200, body=json.dumps(doc).encode(), headers=dict(answer.headers))

    return LoopbackServer(handle)


def _ingest(proxy: LoopbackServer, db: str, *extra: str) -> int:
    uri = f"klaviyo://?api_key={KEY}&base_url=http://127.0.0.1:{proxy.port}&properties=columns"
    return main(["ingest", "--source-uri", uri, "--source-table", "events", "--dest-uri", f"duckdb:///{db}",
                 "--progress", "log", *extra])  # fmt: skip


def _placed(con, table: str, source: str, prefix: str, truth: dict[str, dict]) -> int:
    """Assert every property of every row (``truth``: id -> its properties) is in exactly one place, its value whole:
    the JSON column, or its column (or that column's variant); the JSON column holds nothing else. The number of
    rows whose JSON column is not NULL."""
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall() if r[0].startswith(prefix)]
    kept = 0
    for r in con.execute(f"select id, {source}, {', '.join(cols)} from {table}").fetchall():
        row, rest = dict(zip(cols, r[2:], strict=True)), json.loads(r[1]) if r[1] is not None else {}
        kept += r[1] is not None
        props = {k: v for k, v in (truth[r[0]] or {}).items() if v is not None}
        assert set(rest) <= set(props), r[0]
        for prop, v in props.items():
            col = column_name(prefix, prop)
            value, variant = row.get(col), row.get(col + VARIANT)
            value = json.loads(value) if isinstance(v, dict | list) and value is not None else value
            places = [p for p in (value, json.loads(variant) if variant is not None else None) if p is not None]
            if prop in rest:  # in the JSON column: not in a column too (one with its name: another's, or well-known)
                assert rest[prop] == v and v not in places, (r[0], prop)
            else:
                assert places == [v], (r[0], prop)
    return kept


def test_property_columns_evolve_across_runs(sandbox, tmp_path):
    events = truth.records(
        sandbox.state, "events", datetime.fromisoformat(START + "T00:00:00+00:00"), sandbox_now(sandbox)
    )
    times = sorted(e["attributes"]["datetime"] for e in events)
    mid = times[len(times) // 2]
    proxy = _proxy(sandbox, lambda props, at: _reshape(props, at >= mid))
    db = str(tmp_path / "p.duckdb")
    assert _ingest(proxy, db, "--interval-start", START, "--interval-end", mid) == 0  # before the change only
    with duckdb.connect(db, read_only=True) as con:
        cols = {r[0]: r[1] for r in con.execute("describe events").fetchall()}
    assert cols["property_shoe_size"] == "BIGINT" and cols["property_level"] == "BIGINT" and "property_gift" not in cols
    assert _ingest(proxy, db) == 0  # the rest: gift appears, level is gone, Shoe Size turns to text
    with duckdb.connect(db, read_only=True) as con:
        cols = {r[0]: r[1] for r in con.execute("describe events").fetchall()}
        got = {
            r[0]: r[1:]
            for r in con.execute(
                "select id, property_shoe_size, property_shoe_size__v_json, property_level, property_gift from events"
            ).fetchall()
        }
        kept = _placed(con, "events", "event_properties", "property_",
                       {e["id"]: _reshape(e["attributes"]["event_properties"] or {},
                                          e["attributes"]["datetime"] >= mid) for e in events})  # fmt: skip
    assert cols["property_shoe_size"] == "BIGINT" and cols["property_shoe_size__v_json"] == "JSON"
    assert cols["property_gift"] == "BOOLEAN" and cols["property_level"] == "BIGINT"
    want = {}
    for e in events:
        late = e["attributes"]["datetime"] >= mid
        want[e["id"]] = (None, '"42 EU"', None, True) if late else (42, None, 3, None)
    assert got == want
    assert kept == 0  # every property in a column: the JSON column NULL, nothing stored twice


def test_property_columns_cap(sandbox, tmp_path, capsys):
    proxy = _proxy(sandbox, lambda props, at: _reshape(props, False))  # every event as before the change
    db = str(tmp_path / "c.duckdb")
    uri = f"klaviyo://?api_key={KEY}&base_url=http://127.0.0.1:{proxy.port}&properties=columns&property_columns_max=2"
    code = main(["ingest", "--source-uri", uri, "--source-table", "events,profiles", "--dest-uri", f"duckdb:///{db}",
                 "--interval-start", START, "--progress", "log"])  # fmt: skip
    assert code == 0
    with duckdb.connect(db, read_only=True) as con:
        events = [r[0] for r in con.execute("describe events").fetchall()]
        profiles = [r[0] for r in con.execute("describe profiles").fetchall()]
        now = sandbox_now(sandbox)
        start = datetime.fromisoformat(START + "T00:00:00+00:00")
        truth_events = {e["id"]: _reshape(e["attributes"]["event_properties"] or {}, False)
                        for e in truth.records(sandbox.state, "events", start, now)}  # fmt: skip
        kept_events = _placed(con, "events", "event_properties", "property_", truth_events)
        truth_profiles = {p["id"]: p["attributes"]["properties"] for p in truth.records(sandbox.state, "profiles")}
        kept_profiles = _placed(con, "profiles", "properties", "custom_", truth_profiles)
    known = {"property_value", "property_event_id", "property_message", "property_flow", "property_attributed_flow",
             "property_attributed_message", "property_attributed_channel"}  # fmt: skip
    assert len([c for c in events if c.startswith("property_") and c not in known]) == 2
    assert len([c for c in profiles if c.startswith("custom_")]) == 2
    assert kept_events and kept_profiles  # the properties beyond the cap stay in the JSON column, and only they
    err = capsys.readouterr().err
    assert "cap of 2 property columns (property_columns_max=); it stays in event_properties" in err
    assert "it stays in properties" in err


@pytest.mark.parametrize("dest", ["duckdb", "postgres"])
def test_accounts_whose_property_types_differ_share_its_column(make_sandbox, tmp_path, request, dest):
    """Several accounts in one table: a property that is a number in one account, text in another and true/false in
    a third has one column, of the type the first account to claim it gave; the others' values land in its variant,
    whether the accounts load side by side in one run or in a run of their own (the type is then the destination's:
    the account's own saved state never saw it). Never a failed table, never a lost value. On DuckDB and PostgreSQL
    (each names the column's type its own way when the later run reads it back)."""
    sizes = {3: 42, 4: "42 EU", 5: True}
    sandboxes = {seed: make_sandbox(scale="tiny", rate_limits="off", seed=seed) for seed in sizes}
    proxies = {seed: _proxy(sb, lambda props, at, size=sizes[seed]: {**props, "Shoe Size": size})
               for seed, sb in sandboxes.items()}  # fmt: skip
    if dest == "postgres":
        postgres = request.getfixturevalue("postgres")
        postgres.create_database("kl_shoe")
        dest_uri, schema = postgres.uri("kl_shoe"), "kl"
    else:
        db = str(tmp_path / "a.duckdb")
        dest_uri, schema = f"duckdb:///{db}", "main"

    def run(*seeds: int) -> int:
        args = ["ingest", "--source-table", "events", "--dest-uri", dest_uri, "--dest-table", f"{schema}.events", "--progress", "log",
                "--interval-start", START]  # fmt: skip
        for seed in seeds:
            args += ["--source-uri", f"klaviyo://?api_key={KEY}&base_url=http://127.0.0.1:{proxies[seed].port}"
                     "&properties=columns&account_column=true"]  # fmt: skip
        return main(args)

    assert run(3, 4) == 0  # side by side: the first to lift a batch claims the column's type
    assert run(5) == 0  # alone, later: true/false, which neither of the others' column type holds
    if dest == "postgres":
        con = postgres.connect("kl_shoe")
        try:
            _assert_each_account_once(con, schema, sandboxes, sizes, read=lambda value: value)
        finally:
            con.close()
    else:
        with duckdb.connect(db, read_only=True) as con:
            _assert_each_account_once(con, schema, sandboxes, sizes)


def _assert_each_account_once(con, schema: str, sandboxes: dict, sizes: dict, read=json.loads) -> None:
    """Every event of each account (a sandbox, by seed) holds its ``Shoe Size`` (by seed) in exactly one place: the
    column or its variant (``con``: a DuckDB or PostgreSQL connection; ``read``: a variant's value as the driver gives
    it, JSON text from DuckDB, already decoded from PostgreSQL's json)."""
    col = column_name("property_", "Shoe Size")
    cur = con.cursor()
    cur.execute(f'select account_id, {col}, {col}{VARIANT} from "{schema}".events')
    got = cur.fetchall()
    places: dict[str, set[str]] = {}  # account -> each row's places holding the value (JSON), as one text
    for account, value, variant in got:
        held = [p for p in (value, read(variant) if variant is not None else None) if p is not None]
        places.setdefault(account, set()).add(json.dumps(held))
    accounts = {seed: truth.records(sb.state, "accounts")[0]["id"] for seed, sb in sandboxes.items()}
    assert places == {accounts[seed]: {json.dumps([size])} for seed, size in sizes.items()}


def test_plain_dlt_pipelines_of_accounts_whose_property_types_differ_share_its_column(make_sandbox, tmp_path):
    """klaviyo_source(account_column=True, properties=columns), one dlt pipeline per account (each its own state) into
    one dataset: the second account's text values of a number column land in its variant, its load does not fail."""
    sizes = {3: 42, 4: "42 EU"}
    sandboxes = {seed: make_sandbox(scale="tiny", rate_limits="off", seed=seed) for seed in sizes}
    db = str(tmp_path / "d.duckdb")
    for seed, sb in sandboxes.items():
        proxy = _proxy(sb, lambda props, at, size=sizes[seed]: {**props, "Shoe Size": size})
        pipeline = dlt.pipeline(f"kl_{seed}", destination=dlt.destinations.duckdb(db), dataset_name="klaviyo",
                                pipelines_dir=str(tmp_path / "pipelines"))  # fmt: skip
        source = klaviyo_source(api_key=KEY, tables=["events"], base_url=f"http://127.0.0.1:{proxy.port}",
                                account_column=True, options={"properties": "columns"})  # fmt: skip
        assert not pipeline.run(source).has_failed_jobs
    with duckdb.connect(db, read_only=True) as con:
        _assert_each_account_once(con, "klaviyo", sandboxes, sizes)
