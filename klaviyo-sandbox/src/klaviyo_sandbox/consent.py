"""A profile's consent (issue #25): the ``subscriptions`` additional field of ``/api/profiles``.

Drawn from its own random stream (``(profile, its update time)``), so the profile's other values do not change
with it: a profile the clock touches (a newer ``updated``) may have changed its consent too, and one never touched
keeps what it had. Consent therefore moves only with ``updated`` here (see docs/klaviyo-behaviour.md). Some
profiles are suppressed (``suppression``: reason and time) and some suppressed from single lists
(``list_suppressions``, among the lists that existed when the profile was created). The profiles' filters on
suppression times (``subscriptions.email.marketing.suppression.timestamp``, ``...list_suppressions.timestamp``)
compare the newest such time (a profile without one matches no comparison).
"""

from __future__ import annotations

import random

import numpy as np

from .dataset import mix

EMAIL_CONSENT = [
    "SUBSCRIBED",
    "SUBSCRIBED",
    "SUBSCRIBED",
    "UNSUBSCRIBED",
    "NEVER_SUBSCRIBED",
]
REASONS = [
    "HARD_BOUNCE",
    "INVALID_EMAIL",
    "SPAM_COMPLAINT",
    "UNSUBSCRIBE",
    "USER_SUPPRESSED",
]


def _draws(b, i: int, updated_us: int) -> tuple[random.Random, str, bool]:
    """The first draws of profile ``i``'s consent: its stream, its email consent and whether it is suppressed."""
    r = random.Random(mix(b.salt ^ (i * 0xC0A5) ^ updated_us))
    return r, r.choice(EMAIL_CONSENT), r.random() < 0.1


def suppressed_us(ds, b) -> np.ndarray:
    """Every profile's suppression time (its ``updated``; -1 when not suppressed), for the profiles' filter on
    suppression times without building each profile (:data:`.query.VECTOR_FIELDS`)."""
    _, updated = ds.arrays("profiles")
    return np.array([u if _draws(b, i, u)[2] else -1 for i, u in enumerate(updated.tolist())], dtype=np.int64)


def subscriptions(b, i: int, created: str, updated: str, has_phone: bool) -> dict:
    """The ``subscriptions`` of profile ``i`` of builder ``b`` (its times ``created``, ``updated``)."""
    r, consent, is_suppressed = _draws(b, i, b.ds.updated_us(b.name, i))
    suppressed = [{"reason": r.choice(REASONS), "timestamp": updated}] if is_suppressed else []
    lists = b.ds.timelines["lists"].count_until(b.ds.created_us(b.name, i))
    list_supp = []
    if lists and r.random() < 0.1:
        list_supp = [
            {
                "list_id": b.peer("lists").id_of(r.randrange(lists)),
                "reason": "USER_SUPPRESSED",
                "timestamp": updated,
            }
        ]
    subscribed = consent == "SUBSCRIBED"
    sms = r.choice(["SUBSCRIBED", "UNSUBSCRIBED"]) if has_phone else "NEVER_SUBSCRIBED"
    out = {
        "email": {"marketing": {"can_receive_email_marketing": subscribed and not suppressed, "consent": consent,
                                "consent_timestamp": created if consent != "NEVER_SUBSCRIBED" else None,
                                "last_updated": updated, "method": r.choice(["FORM", "API", "IMPORT"]) if subscribed else None,
                                "method_detail": r.choice(["popup", None]) if subscribed else None,
                                "custom_method_detail": None, "double_optin": r.random() < 0.3 if subscribed else None,
                                "suppression": suppressed, "list_suppressions": list_supp}},
        "sms": {"marketing": {"can_receive_sms_marketing": sms == "SUBSCRIBED", "consent": sms,
                              "consent_timestamp": created if has_phone else None, "method": "TEXT" if has_phone else None,
                              "method_detail": "JOIN" if has_phone else None, "last_updated": updated}},
        "mobile_push": {"marketing": {"can_receive_push_marketing": False, "consent": "NEVER_SUBSCRIBED", "consent_timestamp": None}},
    }  # fmt: skip
    if has_phone:
        out["sms"]["transactional"] = {"can_receive_sms_transactional": True, "consent": "SUBSCRIBED", "consent_timestamp": created,
                                       "method": "TEXT", "method_detail": "JOIN", "last_updated": updated}  # fmt: skip
    return out


SUPPRESSION = "subscriptions.email.marketing.suppression.timestamp"
LIST_SUPPRESSION = "subscriptions.email.marketing.list_suppressions.timestamp"


def filter_fields(subs: dict) -> dict:
    """The hidden fields the profiles' suppression filters read: the newest suppression time of each kind, or None."""
    marketing = subs["email"]["marketing"]
    return {
        SUPPRESSION: max((s["timestamp"] for s in marketing["suppression"]), default=None),
        LIST_SUPPRESSION: max((s["timestamp"] for s in marketing["list_suppressions"]), default=None),
    }
