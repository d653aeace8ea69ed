"""Deterministic, decodable record ids in the shapes Klaviyo uses (ULIDs, 6-char ids, UUIDs, compound ids)."""

from __future__ import annotations

import re

from .dataset import mix

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford
_M6 = 62**6
_A = 1_580_030_173  # odd and coprime with 62**6, so i -> (i*A + B) mod 62**6 is invertible
_A_INV = pow(_A, -1, _M6)


_PAIRS = {a: [x + y for x in a for y in a] for a in (B62, B32)}


def _enc(n: int, alphabet: str, width: int) -> str:
    """``n`` in ``alphabet``, zero-padded to ``width`` digits (two digits per step: this is a hot path)."""
    pairs = _PAIRS[alphabet]
    sq = len(pairs)
    out = ""
    if width % 2:
        n, r = divmod(n, len(alphabet))
        out = alphabet[r]
    for _ in range(width // 2):
        n, r = divmod(n, sq)
        out = pairs[r] + out
    return out


def _dec(text: str, alphabet: str) -> int:
    n = 0
    for ch in text:
        n = n * len(alphabet) + alphabet.index(ch)
    return n


def short_id(i: int, salt: int) -> str:
    """6-character id like ``Y6nRLr`` (metrics, lists, segments, flows, forms, templates)."""
    return _enc((i * _A + salt % _M6) % _M6, B62, 6)


def short_index(text: str, salt: int) -> int | None:
    if len(text) != 6 or any(c not in B62 for c in text):
        return None
    return ((_dec(text, B62) - salt % _M6) * _A_INV) % _M6


def ulid(i: int, t_ms: int, salt: int) -> str:
    """26-char ULID-like id whose last 8 characters encode ``i``."""
    return _enc(t_ms, B32, 10) + _enc(salt & ((1 << 40) - 1), B32, 8) + _enc(i, B32, 8)


def ulid_index(text: str) -> int | None:
    if len(text) != 26 or any(c not in B32 for c in text):
        return None
    return _dec(text[-8:], B32)


def uuid_id(i: int, salt: int) -> str:
    h = mix(salt ^ i)
    hexs = f"{h:016x}{i:016x}"
    return f"{hexs[:8]}-{hexs[8:12]}-4{hexs[13:16]}-a{hexs[17:20]}-{hexs[20:32]}"


def uuid_index(text: str) -> int | None:
    m = re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-([0-9a-f]{12})", text)
    return int(m.group(1), 16) if m else None


def event_id(i: int, salt: int) -> str:
    """11-12 character base62 id like Klaviyo's event ids; decodable (``i`` in the low digits)."""
    return _enc(mix(salt ^ i) % (62**4), B62, 4) + _enc(i, B62, 7)


def event_index(text: str) -> int | None:
    if len(text) != 11 or any(c not in B62 for c in text):
        return None
    return _dec(text[4:], B62)


def suffix_index(text: str, prefix: str) -> int | None:
    """Ids like ``SKU-0000042`` or ``$custom:::$default:::SKU-0000042``: the trailing digits."""
    if not text.startswith(prefix):
        return None
    digits = text[len(prefix) :]
    return int(digits) if digits.isdigit() else None
