"""Write the sandbox's packaged rules file from Klaviyo's OpenAPI spec: ``python build_rules.py [FOLDER] [--out FILE]``.

FOLDER holds ``openapi-stable-2026-07-15.json`` (default: ``$OMNILOAD_KLAVIYO_REFERENCE``, else
``../shared/klaviyo`` beside the repository). The output (default: ``src/klaviyo_sandbox/rules-2026-07-15.json``)
keeps only what the sandbox reads, for every list endpoint the spec describes (a GET whose ``data`` is an array:
rate limits, scopes, filters and their value types, sorts, page sizes, includes, sparse fields, relationships,
attribute names) and every report endpoint (``POST .../*-reports``, ``/api/metric-aggregates``: required
attributes, statistics, groupings, intervals, rate limits, scope), and the single-resource GETs the sandbox
serves (``SINGLES``: a list endpoint's rules, and the lower limits an additional field brings). Keys are sorted and each endpoint is one line,
so the same spec always gives the same bytes (``tests/test_sandbox_rules.py`` checks the committed file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REVISION = "2026-07-15"
OPENAPI_NAME = f"openapi-stable-{REVISION}.json"
HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "src" / "klaviyo_sandbox" / f"rules-{REVISION}.json"


def reference_dir() -> Path:
    """``$OMNILOAD_KLAVIYO_REFERENCE``, else ``../shared/klaviyo`` beside the repository holding this script."""
    env = os.environ.get("OMNILOAD_KLAVIYO_REFERENCE")
    return Path(env) if env else HERE.parents[2] / "shared" / "klaviyo"


def deref(spec: dict, node: Any) -> Any:
    """``node`` with its ``$ref`` chain followed."""
    while isinstance(node, dict) and "$ref" in node:
        _, _, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def flat(spec: dict, node: Any) -> dict[str, Any]:
    """A schema with its ``allOf`` parts merged (properties united), references followed."""
    node = deref(spec, node) or {}
    out = {k: v for k, v in node.items() if k != "allOf"}
    props = dict(out.get("properties") or {})
    for part in node.get("allOf", ()):
        sub = flat(spec, part)
        for key, val in (sub.get("properties") or {}).items():
            if key in props and isinstance(val, dict):
                merged = flat(spec, props[key])
                merged_props = {**(merged.get("properties") or {}), **(flat(spec, val).get("properties") or {})}
                props[key] = {**merged, **flat(spec, val), "properties": merged_props}
            else:
                props[key] = val
    out["properties"] = props
    return out


def _rate(text: str) -> int:
    return int(text.split("/")[0])


def _enum(schema: dict) -> list[str]:
    return list((schema.get("items") or schema).get("enum") or ())


def _list_item(spec: dict, op: dict) -> dict | None:
    """The flattened record schema of a GET whose answer's ``data`` is an array, else None."""
    content = ((op.get("responses") or {}).get("200") or {}).get("content") or {}
    if "application/vnd.api+json" not in content:
        return None
    data = flat(spec, content["application/vnd.api+json"]["schema"])["properties"].get("data")
    data = flat(spec, data) if data else {}
    return flat(spec, data["items"]) if data.get("type") == "array" and "items" in data else None


def list_rules(spec: dict, op: dict, item: dict) -> dict[str, Any]:
    """What one list endpoint accepts and answers (the fields of the sandbox's ``EndpointRules`` but its name and path)."""
    params = {p["name"]: p for p in (deref(spec, p) for p in op.get("parameters", ())) if p.get("in") == "query"}

    def enum(param: str) -> list[str]:
        return _enum((params.get(param) or {}).get("schema") or {})

    page = (params.get("page[size]") or {}).get("schema")
    props = item["properties"]
    relationships = {}
    for rel, node in (flat(spec, props.get("relationships")).get("properties") or {}).items():
        data = flat(spec, flat(spec, node)["properties"].get("data"))
        many = data.get("type") == "array"
        ref = flat(spec, data["items"] if many else data)
        typ = deref(spec, ref["properties"]["type"]).get("enum", [""])[0]
        relationships[rel] = {"cardinality": "to-many" if many else "to-one", "type": typ}
    filters = op.get("x-klaviyo-filters") or {}
    return {
        "resource_type": deref(spec, props["type"])["enum"][0],
        "scopes": list(op["x-klaviyo-scopes"]),
        "burst": _rate(op["x-klaviyo-ratelimit"]["burst"]),
        "steady": _rate(op["x-klaviyo-ratelimit"]["steady"]),
        "filters": {f: s["operators"] for f, s in filters.items()},
        "filter_types": {f: s.get("value", {}) for f, s in filters.items()},
        "filter_required": bool((params.get("filter") or {}).get("required")),
        "sorts": enum("sort"),
        "page_size": {k: page[k] for k in ("default", "minimum", "maximum")} if page else None,
        "includes": enum("include"),
        "fields": {k[len("fields[") : -1]: enum(k) for k in params if k.startswith("fields[")},
        "additional_fields": {
            k[len("additional-fields[") : -1]: enum(k) for k in params if k.startswith("additional-fields[")
        },
        "relationships": relationships,
        "attributes": sorted(flat(spec, props.get("attributes")).get("properties") or {}),
    }


# the single-resource GETs the sandbox serves (``data`` one object): counts analysts ask for, opt-in in omniload
SINGLES = ("/api/lists/{id}", "/api/segments/{id}", "/api/campaign-recipient-estimations/{id}")
_LOWER = re.compile(r"Rate limits when using the `(additional-fields\[[a-z-]+\])=([a-z_]+)` parameter[^<]*:<br>"
                    r"Burst: `(\d+)/s`<br>Steady: `(\d+)/m`")  # fmt: skip


def single_rules(spec: dict, op: dict) -> dict[str, Any]:
    """What one single-resource GET accepts and answers: a list endpoint's rules (no filters, sorts or pages), and
    the lower rate limits its description states for an additional field (``"additional-fields[list]=profile_count":
    [1, 15]``)."""
    content = op["responses"]["200"]["content"]["application/vnd.api+json"]
    item = flat(spec, flat(spec, content["schema"])["properties"]["data"])
    rules = list_rules(spec, op, item)
    rules["additional_limits"] = {f"{m[1]}={m[2]}": [int(m[3]), int(m[4])]
                                  for m in _LOWER.finditer(op.get("description") or "")}  # fmt: skip
    return rules


def report_rules(spec: dict, op: dict) -> dict[str, Any]:
    """What one report endpoint's body may hold (the fields of the sandbox's ``ReportRules`` but its path)."""
    req = flat(
        spec, flat(spec, op["requestBody"]["content"]["application/vnd.api+json"]["schema"])["properties"]["data"]
    )
    attrs = flat(spec, req["properties"]["attributes"])
    props = attrs["properties"]
    rate = op["x-klaviyo-ratelimit"]
    stats = deref(spec, props.get("statistics") or props.get("measurements"))
    return {
        "resource_type": _enum(deref(spec, req["properties"]["type"]))[0],
        "required": list(attrs.get("required", ())),
        "statistics": _enum(stats),
        "group_by": _enum(deref(spec, props.get("group_by", {}))),
        "intervals": _enum(deref(spec, props.get("interval", {}))),
        "burst": _rate(rate["burst"]),
        "steady": _rate(rate["steady"]),
        "daily": _rate(rate["daily"]) if "daily" in rate else None,
        "scope": op["x-klaviyo-scopes"][0],
    }


def build(spec: dict) -> dict[str, Any]:
    """The rules file's content: ``{"revision", "lists": {path: rules}, "reports": {path: rules}, "singles": {path:
    rules}}``."""
    lists, reports = {}, {}
    singles = {path: single_rules(spec, spec["paths"][path]["get"]) for path in SINGLES}
    for path, ops in spec["paths"].items():
        if "get" in ops and (item := _list_item(spec, ops["get"])) is not None:
            lists[path] = list_rules(spec, ops["get"], item)
        if (
            "post" in ops
            and path.startswith("/api/")
            and (path.endswith("-reports") or path == "/api/metric-aggregates")
        ):
            reports[path] = report_rules(spec, ops["post"])
    return {"revision": REVISION, "lists": lists, "reports": reports, "singles": singles}


def render(rules: dict[str, Any]) -> bytes:
    """Stable bytes: sorted keys, one endpoint per line."""
    dump = lambda value: json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    parts = [f'{{"revision":{dump(rules["revision"])},']
    sections = ("lists", "reports", "singles")
    for n, section in enumerate(sections):
        entries = sorted(rules[section].items())
        parts.append(f'"{section}":{{')
        parts += [
            f"{dump(path)}:{dump(value)}{',' if i < len(entries) - 1 else ''}"
            for i, (path, value) in enumerate(entries)
        ]
        parts.append("}," if n < len(sections) - 1 else "}}")
    return ("\n".join(parts) + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, default=None, help=f"the folder holding {OPENAPI_NAME}")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    source = (args.folder or reference_dir()) / OPENAPI_NAME
    if not source.is_file():
        print(f"build_rules: {source} is absent", file=sys.stderr)
        return 2
    args.out.write_bytes(render(build(json.loads(source.read_text()))))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
