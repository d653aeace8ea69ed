"""Rules of the endpoints beyond the 15, by the path the OpenAPI spec gives them, and all the rules together.

The child endpoints the sandbox also serves (``/api/flows/{id}/flow-actions``, ``/api/lists/{id}/profiles``, ...),
the further list endpoints (``/api/tag-groups``, ``/api/coupon-codes``, ``/api/reviews``, ...) and the relationship
endpoints get the same :class:`EndpointRules` as the 15, from the packaged rules file (:mod:`.rules`), which
holds every list endpoint of ``openapi-stable-2026-07-15.json``. Nothing is copied by hand.
"""

from __future__ import annotations

from functools import lru_cache

from . import form_versions
from .more import MORE
from .relationship_pages import PATHS as RELATIONSHIP_PATHS
from .rules import EndpointRules, endpoint_rules, rules_at

# sandbox endpoint name (= omniload table name) -> OpenAPI path
EXTRA_PATHS = {
    "flow-actions": "/api/flows/{id}/flow-actions",
    "flow-messages": "/api/flow-actions/{id}/flow-messages",
    "list-memberships": "/api/lists/{id}/profiles",
    "segment-memberships": "/api/segments/{id}/profiles",
    "metric-properties": "/api/metrics/{id}/metric-properties",
    "object-records": "/api/object-types/{id}/object-records",
    "object-schemas": "/api/object-types/{id}/schema-versions",
    "form-versions": form_versions.PATH,
    **{name: endpoint.path for name, endpoint in MORE.items()},
    **RELATIONSHIP_PATHS,
}


@lru_cache(maxsize=1)
def openapi_rules() -> dict[str, EndpointRules]:
    """Rules of the endpoints in :data:`EXTRA_PATHS`, keyed by their sandbox name."""
    return {name: rules_at(name, path) for name, path in EXTRA_PATHS.items()}


@lru_cache(maxsize=1)
def all_rules() -> dict[str, EndpointRules]:
    """The 15 list endpoints and the further ones the sandbox serves, keyed by sandbox name."""
    return {**endpoint_rules(), **openapi_rules()}
