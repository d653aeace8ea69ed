"""Rows from a profile's consent (issue #25): the ``subscriptions`` additional field of ``/api/profiles`` turned
into one row per (profile, channel), e.g. ``email.marketing``, ``sms.transactional``, ``mobile_push.marketing``
(the ``subscriptions`` table), or one row per account-wide email suppression (the ``suppressions`` table).

A channel's ``can_receive_email_marketing`` (``can_receive_sms_marketing``, ...; WhatsApp says ``can_receive``)
lands as ``can_receive``; email marketing's ``suppression`` and ``list_suppressions`` (list-level consent) as JSON.
Each row carries its profile's ``updated`` (the table's cursor). A table names its flattener by
``TableSpec.nested``; decode.py calls it with each listed record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FIELDS = ("consent", "consent_timestamp", "last_updated", "method", "method_detail", "custom_method_detail", "double_optin",
          "suppression", "list_suppressions", "phone_number", "valid_until", "metadata")  # fmt: skip


def subscription_rows(rec: dict) -> list[dict[str, Any]]:
    """A listed profile's rows: one per channel its ``subscriptions`` holds (none when the API sent none)."""
    attrs = rec.get("attributes") or {}
    out = []
    for channel, kinds in (attrs.get("subscriptions") or {}).items():
        for kind, sub in (kinds or {}).items() if isinstance(kinds, dict) else ():
            if not isinstance(sub, dict):
                continue
            row = {k: sub.get(k) for k in FIELDS}
            row["can_receive"] = next((v for k, v in sub.items() if k.startswith("can_receive")), None)
            row["channel"], row["updated"] = f"{channel}.{kind}", attrs.get("updated")
            out.append({"id": rec.get("id"), "attributes": row})
    return out


def suppression_rows(rec: dict) -> list[dict[str, Any]]:
    """A listed profile's account-wide email suppressions: one row per entry of ``suppression`` (reason, timestamp),
    with the profile's ``email`` (list-level suppressions stay in ``subscriptions.list_suppressions``)."""
    attrs = rec.get("attributes") or {}
    marketing = (((attrs.get("subscriptions") or {}).get("email") or {}).get("marketing")) or {}
    return [{"id": rec.get("id"), "attributes": {"email": attrs.get("email"), "reason": s.get("reason"), "timestamp": s.get("timestamp")}}
            for s in marketing.get("suppression") or () if isinstance(s, dict)]  # fmt: skip


NESTED: dict[str, Callable[[dict], list[dict[str, Any]]]] = {
    "subscriptions": subscription_rows,
    "suppressions": suppression_rows,
}
