"""Rules of the endpoints beyond the digest's 15, read from Klaviyo's OpenAPI spec itself.

The digest (:mod:`.digest`) covers the 15 list endpoints only. The child endpoints the sandbox also serves
(``/api/flows/{id}/flow-actions``, ``/api/lists/{id}/profiles``, ...) and the further list endpoints
(``/api/tag-groups``, ``/api/coupon-codes``, ``/api/reviews``, ...) get the same :class:`EndpointRules`,
built here from the operation in ``openapi-stable-2026-07-15.json``: ``x-klaviyo-ratelimit``,
``x-klaviyo-scopes``, ``x-klaviyo-filters``, the ``sort`` enum, ``page[size]`` bounds, ``include`` and sparse
fields, and the response's attributes and relationships. Nothing is copied by hand.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from .digest import OPENAPI_NAME, EndpointRules, _rate, endpoint_rules, reference_dir
from .relationship_pages import PATHS as RELATIONSHIP_PATHS

# sandbox endpoint name (= omniload table name) -> OpenAPI path
EXTRA_PATHS = {
    "flow-actions": "/api/flows/{id}/flow-actions",
    "flow-messages": "/api/flow-actions/{id}/flow-messages",
    "list-memberships": "/api/lists/{id}/profiles",
    "segment-memberships": "/api/segments/{id}/profiles",
    "tag-groups": "/api/tag-groups",
    "coupon-codes": "/api/coupon-codes",
    "push-tokens": "/api/push-tokens",
    "custom-metrics": "/api/custom-metrics",
    "mapped-metrics": "/api/mapped-metrics",
    "universal-content": "/api/template-universal-content",
    "accounts": "/api/accounts",
    "reviews": "/api/reviews",
    **RELATIONSHIP_PATHS,
}


@lru_cache(maxsize=1)
def load_openapi() -> dict[str, Any]:
    return json.loads((reference_dir() / OPENAPI_NAME).read_text())


def _deref(spec: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        _, _, section, name = node["$ref"].split("/")
        node = spec["components"][section][name]
    return node


def _flat(spec: dict, node: Any) -> dict[str, Any]:
    """A schema with its ``allOf`` parts merged (properties united), references followed."""
    node = _deref(spec, node) or {}
    out = {k: v for k, v in node.items() if k != "allOf"}
    props = dict(out.get("properties") or {})
    for part in node.get("allOf", ()):
        sub = _flat(spec, part)
        for key, val in (sub.get("properties") or {}).items():
            if key in props and isinstance(val, dict):
                merged = _flat(spec, props[key])
                merged_props = {**(merged.get("properties") or {}), **(_flat(spec, val).get("properties") or {})}
                props[key] = {**merged, **_flat(spec, val), "properties": merged_props}
            else:
                props[key] = val
    out["properties"] = props
    return out


def rules_from_openapi(name: str, path: str) -> EndpointRules:
    spec = load_openapi()
    op = spec["paths"][path]["get"]
    params = {p["name"]: p for p in (_deref(spec, p) for p in op.get("parameters", ())) if p.get("in") == "query"}

    def enum(param: str) -> tuple[str, ...]:
        schema = (params.get(param) or {}).get("schema") or {}
        return tuple((schema.get("items") or schema).get("enum") or ())

    page = (params.get("page[size]") or {}).get("schema")
    body = _flat(spec, op["responses"]["200"]["content"]["application/vnd.api+json"]["schema"])
    item = _flat(spec, body["properties"]["data"]["items"])
    props = item["properties"]
    attrs = _flat(spec, props.get("attributes")).get("properties") or {}
    relationships = {}
    for rel, node in (_flat(spec, props.get("relationships")).get("properties") or {}).items():
        data = _flat(spec, _flat(spec, node)["properties"].get("data"))
        many = data.get("type") == "array"
        ref = _flat(spec, data["items"] if many else data)
        typ = _deref(spec, ref["properties"]["type"]).get("enum", [""])[0]
        relationships[rel] = {"cardinality": "to-many" if many else "to-one", "type": typ}
    filters = op.get("x-klaviyo-filters") or {}
    return EndpointRules(
        name=name,
        path=path,
        resource_type=_deref(spec, props["type"])["enum"][0],
        scopes=tuple(op["x-klaviyo-scopes"]),
        burst=_rate(op["x-klaviyo-ratelimit"]["burst"]),
        steady=_rate(op["x-klaviyo-ratelimit"]["steady"]),
        filters={f: s["operators"] for f, s in filters.items()},
        filter_types={f: s.get("value", {}) for f, s in filters.items()},
        filter_required=bool((params.get("filter") or {}).get("required")),
        sorts=enum("sort"),
        page_size={"default": page["default"], "minimum": page["minimum"], "maximum": page["maximum"]} if page else None,
        includes=enum("include"),
        fields={k[len("fields[") : -1]: enum(k) for k in params if k.startswith("fields[")},
        additional_fields={k[len("additional-fields[") : -1]: enum(k) for k in params if k.startswith("additional-fields[")},
        relationships=relationships,
        attributes=attrs,
    )


@lru_cache(maxsize=1)
def openapi_rules() -> dict[str, EndpointRules]:
    """Rules of the endpoints in :data:`EXTRA_PATHS`, keyed by their sandbox name."""
    return {name: rules_from_openapi(name, path) for name, path in EXTRA_PATHS.items()}


@lru_cache(maxsize=1)
def all_rules() -> dict[str, EndpointRules]:
    """The digest's 15 list endpoints and the endpoints read from the OpenAPI spec."""
    return {**endpoint_rules(), **openapi_rules()}
