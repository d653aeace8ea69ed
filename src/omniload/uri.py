"""Source URIs and secret redaction: ``klaviyo://?api_key=pk_...[&base_url=...][&revision=...]``.

Every error names what was wrong and what is allowed, and never repeats a secret (destinations.py parses
destination URIs with the same rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .errors import UsageError

SOURCE_SCHEMES = ("klaviyo",)
_SECRET_PARAMS = re.compile(r"((?:api_key|password|token|secret)=)[^&\s'\"]+", re.I)
_USERINFO = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Hide API keys and URI passwords in any text."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _USERINFO.sub(r"\1***@", text)
    return re.sub(r"\bpk_[A-Za-z0-9]{6,}", "pk_***", text)


@dataclass(frozen=True)
class KlaviyoURI:
    api_key: str
    base_url: str
    revision: str


def _scheme(uri: str, flag: str, allowed: tuple[str, ...]) -> str:
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in allowed:
        shown = scheme or redact(uri)
        raise UsageError(f"{flag}: unknown scheme '{shown}'; allowed: {', '.join(s + '://' for s in allowed)}")
    return scheme


def parse_source(uri: str) -> KlaviyoURI:
    _scheme(uri, "--source-uri", SOURCE_SCHEMES)
    query = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    unknown = sorted(set(query) - {"api_key", "base_url", "revision"})
    if unknown:
        raise UsageError(f"--source-uri: unknown parameter '{unknown[0]}'; allowed: api_key, base_url, revision")
    key = (query.get("api_key") or [""])[0].strip()
    if not key:
        raise UsageError("--source-uri: klaviyo:// needs an api_key, e.g. klaviyo://?api_key=pk_...")
    base = (query.get("base_url") or ["https://a.klaviyo.com"])[0].rstrip("/")
    if not re.match(r"^https?://[^/\s]+", base):
        raise UsageError(f"--source-uri: base_url '{base}' is not an http(s) URL")
    revision = (query.get("revision") or ["2026-07-15"])[0]
    if not re.match(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$", revision):
        raise UsageError(f"--source-uri: revision '{revision}' is not of the form YYYY-MM-DD")
    return KlaviyoURI(key, base, revision)
