"""Klaviyo's rules as the sandbox ships them: ``rules-2026-07-15.json`` in this package, and the rules of the 15
list endpoints.

The sandbox never hand-copies Klaviyo's rules: filters, sorts, page sizes, includes, sparse fields, rate limits
and report bodies all come from that file, which ``scripts/build_rules.py`` generates from Klaviyo's OpenAPI
spec (every list endpoint the spec describes, keyed by path, and the report endpoints). Nothing outside the
package is read at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

REVISION = "2026-07-15"
RULES_NAME = f"rules-{REVISION}.json"
# the 15 list endpoints of the product spec; each is served at /api/{name}
LIST_ENDPOINTS = ("events", "profiles", "campaigns", "metrics", "tags", "coupons", "catalog-variants",
                  "catalog-categories", "catalog-items", "flows", "lists", "images", "segments", "forms", "templates")  # fmt: skip


@dataclass(frozen=True)
class EndpointRules:
    """What one list endpoint accepts, read from the rules file."""

    name: str  # e.g. "catalog-variants"
    path: str  # e.g. "/api/catalog-variants"
    resource_type: str  # e.g. "catalog-variant"
    scopes: tuple[str, ...]
    burst: int  # requests per second
    steady: int  # requests per minute
    filters: dict[str, dict[str, list[str]]]  # field -> {"single"|"list"|"none": [operators]}
    filter_types: dict[str, dict[str, Any]]  # field -> value schema
    filter_required: bool
    sorts: tuple[str, ...]
    page_size: dict[str, int] | None  # {"default","minimum","maximum"} or None (fixed pages)
    includes: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]  # type -> allowed sparse fields
    additional_fields: dict[str, tuple[str, ...]]
    relationships: dict[str, dict[str, str]]
    attributes: tuple[str, ...] = field(default_factory=tuple)  # the record's attribute names
    # "additional-fields[list]=profile_count" -> (burst, steady): the lower limits a single-resource GET states
    additional_limits: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def known_params(self) -> set[str]:
        base = {"filter", "sort", "page[cursor]", "page[size]", "include"}
        return (
            base | {f"fields[{t}]" for t in self.fields} | {f"additional-fields[{t}]" for t in self.additional_fields}
        )


@lru_cache(maxsize=1)
def rules_file() -> dict[str, Any]:
    """The packaged rules: ``{"revision", "lists": {path: rules}, "reports": {path: rules}, "singles": {path: rules}}``."""
    return json.loads(resources.files(__package__).joinpath(RULES_NAME).read_bytes())


def rules_at(name: str, path: str, section: str = "lists") -> EndpointRules:
    """The rules of the list endpoint at ``path`` (as the spec writes it: ``/api/flows/{id}/flow-actions``), named
    ``name`` (``section="singles"``: a single-resource GET, such as ``/api/lists/{id}``)."""
    r = rules_file()[section][path]
    return EndpointRules(
        name=name, path=path, resource_type=r["resource_type"], scopes=tuple(r["scopes"]), burst=r["burst"],
        steady=r["steady"], filters=r["filters"], filter_types=r["filter_types"], filter_required=r["filter_required"],
        sorts=tuple(r["sorts"]), page_size=r["page_size"], includes=tuple(r["includes"]),
        fields={t: tuple(v) for t, v in r["fields"].items()},
        additional_fields={t: tuple(v) for t, v in r["additional_fields"].items()},
        relationships=r["relationships"], attributes=tuple(r["attributes"]),
        additional_limits={k: tuple(v) for k, v in r.get("additional_limits", {}).items()},
    )  # fmt: skip


@lru_cache(maxsize=1)
def endpoint_rules() -> dict[str, EndpointRules]:
    """Rules for the 15 endpoints, keyed by endpoint name (``events``, ``catalog-items``, ...)."""
    return {name: rules_at(name, f"/api/{name}") for name in LIST_ENDPOINTS}
