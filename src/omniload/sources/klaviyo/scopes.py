"""The read scopes a Klaviyo API key needs for each endpoint omniload reads (the OpenAPI file's
``x-klaviyo-scopes``; tests/test_table_specs.py checks every table's path against it).

A key without one of them gets ``403 permission_denied``, whose text does not say which scope is missing, so the
error messages name them from here.
"""

from __future__ import annotations

# an endpoint's resource segment -> the scope's resource, where the two differ
_RESOURCE = {
    "catalog-variants": "catalogs", "catalog-categories": "catalogs", "catalog-items": "catalogs", "categories": "catalogs",
    "variants": "catalogs",
    "flow-actions": "flows", "flow-messages": "flows", "tag-groups": "tags", "custom-metrics": "metrics",
    "mapped-metrics": "metrics", "metric-aggregates": "metrics", "template-universal-content": "templates",
    "data-sources": "custom-objects", "webhook-topics": "webhooks", "flow-triggers": "flows", "metric-properties": "metrics",
    "object-types": "custom-objects", "object-records": "custom-objects", "schema-versions": "custom-objects",
    "form-versions": "forms", "campaign-recipient-estimations": "campaigns",
}  # fmt: skip
_ALSO = {"push-tokens": ("profiles",)}  # endpoints that need another resource's scope as well


def _resource(segment: str) -> str:
    for suffix in ("-values-reports", "-series-reports"):  # campaign-values-reports -> campaigns
        if segment.endswith(suffix):
            return segment[: -len(suffix)] + "s"
    return _RESOURCE.get(segment, segment)


def scopes(path: str) -> tuple[str, ...]:
    """The scopes a GET or POST on ``path`` needs: ``/api/lists/{id}/profiles`` or ``/api/lists/XYZ/profiles`` ->
    ``('lists:read', 'profiles:read')``; a relationship endpoint alike (a tag's campaigns: tags and campaigns)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]  # "api", resource[, id, child...]
    if len(parts) < 2:
        return ()
    names = [_resource(parts[1]), *_ALSO.get(parts[1], ())]
    if len(parts) > 3:  # a child or relationship endpoint: the related resource's scope too
        names.append(_resource(parts[-1]))
    return tuple(sorted({f"{n}:read" for n in names}))
