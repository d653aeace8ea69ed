"""The declarative table specs agree with Klaviyo's OpenAPI spec itself (not with the sandbox's copy of it):
paths, page sizes, rate limits, filters, sorts, sparse fields, attributes, scopes."""

from __future__ import annotations

import pytest

from omniload.sources.klaviyo.tables import TABLES as ALL_TABLES
from omniload.types import TS

from .reference import OPENAPI_NAME, build_rules, load

# every list endpoint of the spec, by path, read by the generator of the sandbox's rules file from the spec itself
RULES = build_rules.build(load(OPENAPI_NAME))
LISTS = RULES["lists"]
# report specs are checked in test_reports.py, include tables (read through their parent) in test_table_families.py,
# nested ones (subscriptions, read from the profiles) in test_consent.py, single-resource ones in test_counts.py
TABLES = {
    n: t
    for n, t in ALL_TABLES.items()
    if t.method == "GET" and not t.include and not t.kinds and not t.nested and not t.single
}  # tag links too
PRODUCT_SPEC = {  # table: (primary key, incremental key, strategy), as the product spec gives them
    "events": (("id",), "datetime", "merge"), "profiles": (("id",), "updated", "merge"),
    "campaigns": (("id",), "updated_at", "merge"), "metrics": (("id",), "updated", "merge"), "tags": (("id",), None, "replace"),
    "coupons": (("id",), None, "replace"), "catalog-variants": (("id",), "updated", "merge"),
    "catalog-categories": (("id",), "updated", "merge"), "catalog-items": (("id",), "updated", "merge"),
    "flows": (("id",), "updated", "merge"), "lists": (("id",), "updated", "merge"), "images": (("id",), "updated_at", "merge"),
    "segments": (("id",), "updated", "merge"), "forms": (("id",), "updated_at", "merge"), "templates": (("id",), "updated", "merge"),
}  # fmt: skip


def test_the_fifteen_tables_match_the_product_spec():
    assert {n: (t.primary_key, t.cursor, t.strategy) for n, t in TABLES.items() if n in PRODUCT_SPEC} == PRODUCT_SPEC


@pytest.mark.parametrize("name", sorted(TABLES))
def test_spec_agrees_with_digest(name):
    spec = TABLES[name]
    assert spec.path in LISTS  # one of Klaviyo's list endpoints
    rules = LISTS[spec.path]
    assert spec.resource_type == rules["resource_type"]
    assert (spec.burst, spec.steady) == (rules["burst"], rules["steady"])
    assert spec.page_size == (rules["page_size"]["maximum"] if rules["page_size"] else None)  # the largest page allowed
    if spec.sort:
        assert spec.sort in rules["sorts"] and f"-{spec.sort}" in rules["sorts"]
    ops = rules["filters"].get(spec.cursor or "", {}).get("single", [])
    assert spec.lower_op == next((op for op in ("greater-or-equal", "greater-than") if op in ops), None)
    assert spec.upper_op == ("less-than" if "less-than" in ops else None)
    if spec.parent is not None:  # a child: the sparse field that lists its parent is one the parent endpoint allows
        parent = TABLES[spec.parent.table]
        assert spec.parent.fields in LISTS[parent.path]["fields"][parent.resource_type]
    for key, value in spec.extra_params.items():
        if key.startswith("fields["):
            assert set(value.split(",")) <= set(rules["fields"][key[len("fields[") : -1]])
    declared = set(rules["attributes"])
    if declared:  # profiles and templates are described with allOf in the digest; see the conformance test
        assert set(spec.columns) - {"subscriptions"} <= declared
    assert spec.cursor is None or spec.columns[spec.cursor] == TS


@pytest.mark.parametrize("name", sorted(TABLES))
def test_client_cursor_is_the_time_the_sandbox_moves(name):
    """The client's incremental key is the attribute the sandbox's clock updates (events: their datetime; child
    resources: the sandbox's child cursor, memberships' joined_group_at)."""
    from klaviyo_sandbox.children import CURSORS
    from klaviyo_sandbox.resources import UPDATED_FIELD

    assert TABLES[name].cursor == CURSORS.get(name, UPDATED_FIELD[name] or ("datetime" if name == "events" else None))


def test_generic_code_does_not_import_the_klaviyo_source():
    """Only the Klaviyo package itself, the sandbox, the registry (by name) and the orchestrator integrations (which
    adapt a named source: ``integrations/dagster.py`` builds on ``klaviyo_source()``) may know the Klaviyo source."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "omniload"
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(("sources/klaviyo/", "sandbox/", "integrations/")):
            continue
        text = path.read_text()
        if re.search(r"(from|import)\s+(omniload)?\.*sources\.klaviyo|from \.klaviyo|from \.\.sources\.klaviyo", text):
            offenders.append(rel)
    assert offenders == []


def test_the_scopes_named_in_403_messages_are_the_specs():
    """scopes.py (what a 403 and the preflight name) agrees with every endpoint's ``x-klaviyo-scopes``."""
    from omniload.sources.klaviyo.scopes import scopes

    paths = {t.path for t in ALL_TABLES.values()}  # the endpoints omniload reads
    declared = {path: tuple(sorted(r["scopes"])) for path, r in LISTS.items() if r["scopes"] and path in paths}
    declared.update({path: (r["scope"],) for path, r in RULES["reports"].items()})
    declared.update({path: tuple(sorted(r["scopes"])) for path, r in RULES["singles"].items()})
    assert len(declared) > 30
    assert {path: scopes(path) for path in declared} == declared
    assert {t.path for t in ALL_TABLES.values() if not t.kinds} <= set(declared)  # every table's endpoint is checked
