"""dlt's saved pipeline state as stored in a destination: decode it, find one resource's part, and find the tables
loaded from one source table (their saved identity)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def decode_state(text: str) -> dict[str, Any]:
    """zlib-compressed JSON in base64, or plain JSON; ``ValueError`` when it is neither."""
    import base64
    import binascii
    import zlib

    import orjson

    try:
        return orjson.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (binascii.Error, zlib.error):
        pass
    try:
        state = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("not a dlt state") from None
    if not isinstance(state, dict):
        raise ValueError("not a dlt state")
    return state


def resource_state(state: dict[str, Any], table: str) -> dict[str, Any]:
    """The resource state of ``table`` inside a dlt pipeline state."""
    for source in (state.get("sources") or {}).values():
        found = (source.get("resources") or {}).get(table)
        if found:
            return dict(found)
    return {}


def pipeline_name(schema: str, table: str) -> str:
    """The dlt pipeline of one destination table: its loads and its reconciles share the name, so the state."""
    return f"omniload__{schema}__{table}"


def loaded_from(states: Iterable[tuple[str, Any]], schema: str, origin: str) -> list[str]:
    """The tables of ``schema`` whose newest saved state says they were loaded from ``origin`` (a source table's
    identity), out of ``states``: (pipeline name, its newest state, encoded or decoded) of the schema's pipelines.
    A table's own pipeline is the one named after it; others are not trusted."""
    found = []
    for name, state in states:
        try:
            state = decode_state(state) if isinstance(state, str) else state
        except ValueError:
            continue
        for source in (state.get("sources") or {}).values():
            for table, saved in (source.get("resources") or {}).items():
                if saved.get("origin") == origin and name == pipeline_name(schema, table) and table not in found:
                    found.append(table)
    return sorted(found)
