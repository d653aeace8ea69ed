"""Secret redaction for every message omniload prints: API keys, URI passwords and tokens become ``***``.

Generic patterns catch ``api_key=``/``password=``/``token=`` parameters and URI user-info passwords; sources
register the secrets they hold (:func:`register_secret`), so those are hidden wherever they appear.
"""

from __future__ import annotations

import re

_SECRET_PARAMS = re.compile(
    r"((?:api_key|password|token|secret|secret_access_key|aws_secret_access_key|session_token)=)[^&\s'\"]+", re.I
)
_USERINFO = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Hide ``value`` in every message from now on (values shorter than 4 characters are not secrets)."""
    if len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Hide secrets in any text."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _USERINFO.sub(r"\1***@", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
