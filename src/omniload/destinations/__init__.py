"""Destinations as objects, found by URI scheme: each family owns its preflight, locking, saved state and fast
paths (see base.py). ``parse_destination`` turns a ``--dest-uri`` into one."""

from __future__ import annotations

from ..errors import UsageError
from ..uri import redact
from . import warehouses
from .base import NO_TABLE, Destination
from .duckdb import DuckDB
from .files import FILE_FORMATS, Files
from .lake import TABLE_FORMATS, Lake
from .locks import lock_wait
from .sqlite import Sqlite

SCHEMES = ("duckdb", *FILE_FORMATS, *TABLE_FORMATS, "s3", "sqlite", *warehouses.WAREHOUSES, "md")


def parse_destination(uri: str) -> Destination:
    dest = _parse(uri)
    dest.lock_wait = lock_wait()
    return dest


def _parse(uri: str) -> Destination:
    lowered = uri.lower()
    if lowered.startswith("md:"):
        return warehouses.parse("md", uri)
    scheme = lowered.split("://", 1)[0] if "://" in uri else ""
    if scheme not in SCHEMES:
        shown = scheme or redact(uri)
        raise UsageError(f"--dest-uri: unknown scheme '{shown}'; allowed: {', '.join(s + '://' for s in SCHEMES if s != 'md')}, md:")
    if scheme == "duckdb":
        return DuckDB.parse(uri)
    if scheme in TABLE_FORMATS or scheme == "s3" or (scheme in FILE_FORMATS and "table_format=" in uri):
        return Lake.parse(scheme, uri)
    if scheme in FILE_FORMATS:
        return Files.parse(scheme, uri)
    if scheme == "sqlite":
        return Sqlite.parse(uri)
    return warehouses.parse(scheme, uri)


__all__ = ["NO_TABLE", "Destination", "DuckDB", "Files", "Lake", "parse_destination"]
