"""dlt's saved pipeline state as stored in a destination: decode it and find one resource's part."""

from __future__ import annotations

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
