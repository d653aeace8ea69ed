"""Parse and validate Klaviyo `filter=` expressions.

Grammar (Klaviyo's, as documented): ``op(field[,value])`` terms joined by commas (AND), or wrapped in
``and(...)``. Literals: quoted strings (single or double quotes), unquoted ISO-8601 datetimes, numbers,
``true``/``false``, ``null`` and bracketed lists. Each endpoint allows only certain field/operator pairs and
argument kinds (``single``, ``list``, ``none``); anything else is an :class:`FilterError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OPERATORS = {
    "equals", "less-than", "less-or-equal", "greater-than", "greater-or-equal",
    "contains", "contains-any", "contains-all", "starts-with", "ends-with", "any", "has", "and",
}  # fmt: skip

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class FilterError(ValueError):
    """A filter expression the API would reject; the message is the API's `detail` text."""


@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str  # "string", "datetime", "number", "boolean", "null"


@dataclass(frozen=True)
class Condition:
    op: str
    field: str
    arg: str  # "single", "list" or "none"
    value: Any  # python value: str, datetime, float/int, bool, None, or list of those


def parse_datetime(text: str) -> datetime:
    """Parse an ISO-8601 datetime literal; a missing offset means UTC."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str) -> FilterError:
        return FilterError(f"Invalid filter provided: {msg} at position {self.pos} in '{self.text}'.")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error(f"expected '{ch}'")
        self.pos += 1

    def terms(self) -> list[tuple[str, str, str, Any]]:
        out = self.term()
        while self.peek() == ",":
            self.pos += 1
            out += self.term()
        return out

    def term(self) -> list[tuple[str, str, str, Any]]:
        m = re.compile(r"[a-z-]+").match(self.text, self.pos)
        if not m:
            raise self.error("expected an operator")
        op = m.group(0)
        if op not in OPERATORS:
            raise FilterError(f"Invalid filter provided: unknown operator '{op}'.")
        self.pos = m.end()
        self.expect("(")
        if op == "and":
            inner = self.terms()
            self.expect(")")
            return inner
        m = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$-]*").match(self.text, self.pos)
        if not m:
            raise self.error("expected a field name")
        field = m.group(0)
        self.pos = m.end()
        if self.peek() == ")":
            self.pos += 1
            return [(op, field, "none", None)]
        self.expect(",")
        if self.peek() == "[":
            self.pos += 1
            items = []
            while self.peek() != "]":
                items.append(self.literal())
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.error("expected ',' or ']' in a list")
            self.pos += 1
            value: Any = items
            arg = "list"
        else:
            value = self.literal()
            arg = "single"
        self.expect(")")
        return [(op, field, arg, value)]

    def literal(self) -> Literal:
        ch = self.peek()
        if ch in ("'", '"'):
            end = self.text.find(ch, self.pos + 1)
            if end < 0:
                raise self.error("unterminated string")
            value = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return Literal(value, "string")
        m = re.compile(r"[^,()\[\]]+").match(self.text, self.pos)
        if not m:
            raise self.error("expected a value")
        raw = m.group(0).strip()
        self.pos = m.end()
        if raw in ("true", "false"):
            return Literal(raw == "true", "boolean")
        if raw == "null":
            return Literal(None, "null")
        if _NUMBER.match(raw):
            return Literal(float(raw) if "." in raw else int(raw), "number")
        if _DATETIME.match(raw):
            try:
                return Literal(parse_datetime(raw), "datetime")
            except ValueError:
                pass
        raise FilterError(f"Invalid filter provided: '{raw}' is not a valid literal; strings must be quoted.")


def _coerce(lit: Literal, field: str, schema: dict[str, Any]) -> Any:
    typ = schema.get("type")
    fmt = schema.get("format")
    if lit.kind == "null":
        return None
    if fmt == "date-time":
        if lit.kind != "datetime":
            raise FilterError(f"Invalid filter provided: '{field}' takes an unquoted datetime, got {lit.kind}.")
        return lit.value
    if typ == "string":
        if lit.kind != "string":
            raise FilterError(f"Invalid filter provided: '{field}' takes a quoted string, got {lit.kind}.")
        return lit.value
    if typ in ("number", "integer"):
        if lit.kind != "number":
            raise FilterError(f"Invalid filter provided: '{field}' takes a number, got {lit.kind}.")
        return lit.value
    if typ == "boolean":
        if lit.kind != "boolean":
            raise FilterError(f"Invalid filter provided: '{field}' takes true or false, got {lit.kind}.")
        return lit.value
    return lit.value


def parse_filter(
    text: str, allowed: dict[str, dict[str, list[str]]], types: dict[str, dict[str, Any]], resource: str
) -> list[Condition]:
    """Parse ``text`` and check every condition against the endpoint's allowed field/operator pairs."""
    parser = _Parser(text.strip())
    raw = parser.terms()
    if parser.pos != len(parser.text):
        raise parser.error("unexpected trailing characters")
    out: list[Condition] = []
    for op, field, arg, value in raw:
        ops = allowed.get(field)
        if ops is None:
            raise FilterError(f"'{field}' is not a valid field for the resource '{resource}'.")
        if op not in ops.get(arg, []):
            kinds = ", ".join(f"{o} ({k})" for k, lst in ops.items() for o in lst)
            raise FilterError(f"'{op}' is not a valid operator for '{field}' with a {arg} value; allowed: {kinds}.")
        schema = types.get(field, {})
        if arg == "list":
            py: Any = [_coerce(v, field, schema) for v in value]
        elif arg == "single":
            py = _coerce(value, field, schema)
        else:
            py = None
        out.append(Condition(op, field, arg, py))
    return out
