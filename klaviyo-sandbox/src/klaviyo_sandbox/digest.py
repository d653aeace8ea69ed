"""Load Klaviyo's endpoint digest (`endpoints-2026-07-15.json`) and expose the per-endpoint rules.

The sandbox never hand-copies Klaviyo's rules: filters, sorts, page sizes, includes, sparse fields and rate
limits all come from the digest kept in the shared reference folder (`../shared/klaviyo/` beside the repo).
Set ``OMNILOAD_KLAVIYO_REFERENCE`` to point elsewhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

REVISION = "2026-07-15"
DIGEST_NAME = f"endpoints-{REVISION}.json"
OPENAPI_NAME = f"openapi-stable-{REVISION}.json"


class ReferenceNotFound(RuntimeError):
    """The shared Klaviyo reference folder could not be located."""


def reference_dir() -> Path:
    """Return the folder holding Klaviyo's digest and OpenAPI spec, searching the usual places."""
    env = os.environ.get("OMNILOAD_KLAVIYO_REFERENCE")
    candidates: list[Path] = [Path(env)] if env else []
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in [start, *start.parents]:
            candidates.append(parent / "shared" / "klaviyo")
    for cand in candidates:
        if (cand / DIGEST_NAME).is_file():
            return cand
    raise ReferenceNotFound(
        f"cannot find {DIGEST_NAME}: set OMNILOAD_KLAVIYO_REFERENCE to the folder holding it "
        "(normally ../shared/klaviyo beside the repository)"
    )


def _rate(text: str) -> int:
    return int(text.split("/")[0])


@dataclass(frozen=True)
class EndpointRules:
    """What one list endpoint accepts, read from the digest."""

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
    attributes: dict[str, Any] = field(default_factory=dict)  # attribute schema properties (may be empty)

    @property
    def known_params(self) -> set[str]:
        base = {"filter", "sort", "page[cursor]", "page[size]", "include"}
        return base | {f"fields[{t}]" for t in self.fields} | {f"additional-fields[{t}]" for t in self.additional_fields}


@lru_cache(maxsize=1)
def load_digest() -> dict[str, Any]:
    return json.loads((reference_dir() / DIGEST_NAME).read_text())


@lru_cache(maxsize=1)
def endpoint_rules() -> dict[str, EndpointRules]:
    """Rules for the 15 endpoints, keyed by endpoint name (``events``, ``catalog-items``, ...)."""
    digest = load_digest()
    out: dict[str, EndpointRules] = {}
    for name, ep in digest["endpoints"].items():
        query = ep["query"]
        fields = {
            key[len("fields[") : -1]: tuple(spec.get("allowed", ()))
            for key, spec in query.items()
            if key.startswith("fields[")
        }
        additional = {
            key[len("additional-fields[") : -1]: tuple(spec.get("allowed", ()) or ())
            for key, spec in query.items()
            if key.startswith("additional-fields[")
        }
        page = query.get("page[size]")
        filters = ep.get("filters") or {}
        attrs = ((ep["response"].get("attributes") or {}).get("properties")) or {}
        out[name] = EndpointRules(
            name=name,
            path=ep["path"],
            resource_type=ep["response"]["resource_type"][0],
            scopes=tuple(ep["scopes"]),
            burst=_rate(ep["rate_limit"]["burst"]),
            steady=_rate(ep["rate_limit"]["steady"]),
            filters={f: spec["operators"] for f, spec in filters.items()},
            filter_types={f: spec.get("value", {}) for f, spec in filters.items()},
            filter_required=bool(ep.get("filter_required")),
            sorts=tuple(query.get("sort", {}).get("enum", ())),
            page_size=(
                {"default": page["default"], "minimum": page["minimum"], "maximum": page["maximum"]} if page else None
            ),
            includes=tuple(query.get("include", {}).get("allowed", ())),
            fields=fields,
            additional_fields=additional,
            relationships=dict(ep["response"].get("relationships") or {}),
            attributes=attrs,
        )
    return out
