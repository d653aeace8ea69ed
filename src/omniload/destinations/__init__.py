"""Destinations as objects, found by URI scheme: each family owns its preflight, locking, saved state and fast
paths (see base.py). ``parse_destination`` turns a ``--dest-uri`` into one through ``PARSERS``, a table from
scheme to parser."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UsageError
from ..uri import redact
from . import warehouses
from .base import NO_TABLE, Destination
from .duckdb import DuckDB
from .files import FILE_FORMATS, Files
from .lake import TABLE_FORMATS, Lake
from .locks import lock_wait
from .sqlite import Sqlite


def _files(scheme: str, uri: str) -> Destination:
    """A folder of files, or a Delta/Iceberg table in one when ``table_format=`` is given."""
    return Lake.parse(scheme, uri) if "table_format=" in uri else Files.parse(scheme, uri)


# scheme -> the parser of its URIs (as sources/registry.py maps schemes to sources)
PARSERS: dict[str, Callable[[str, str], Destination]] = {
    "duckdb": lambda scheme, uri: DuckDB.parse(uri),
    **{s: _files for s in FILE_FORMATS},
    **{s: Lake.parse for s in (*TABLE_FORMATS, "s3")},
    "sqlite": lambda scheme, uri: Sqlite.parse(uri),
    **{s: warehouses.parse for s in (*warehouses.WAREHOUSES, "md")},
}
SCHEMES = tuple(PARSERS)


def parse_destination(uri: str) -> Destination:
    dest = _parse(uri)
    dest.lock_wait = lock_wait()
    return dest


def _parse(uri: str) -> Destination:
    lowered = uri.lower()
    scheme = "md" if lowered.startswith("md:") else lowered.split("://", 1)[0] if "://" in uri else ""
    if scheme not in PARSERS:
        shown = scheme or redact(uri)
        raise UsageError(
            f"--dest-uri: unknown scheme '{shown}'; allowed: {', '.join(s + '://' for s in SCHEMES if s != 'md')}, md:"
        )
    return PARSERS[scheme](scheme, uri)


__all__ = ["NO_TABLE", "Destination", "DuckDB", "Files", "Lake", "parse_destination"]
