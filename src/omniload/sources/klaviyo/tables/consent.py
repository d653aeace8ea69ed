"""Consent (issue #25): who may be emailed, texted or pushed, one row per (profile, channel), and who is suppressed.

Read from ``/api/profiles`` with ``additional-fields[profile]=subscriptions`` and the sparse fieldset
``fields[profile]=updated`` (no other profile attribute), filtered on the server by the profile's ``updated``
(``>``, ``<``), the cursor, so each run reads only the profiles changed since the last (Klaviyo's own profiles
filters on suppression timestamps would miss consent given or taken back without a suppression). Each profile's
``subscriptions`` becomes one row per channel (``sources/klaviyo/consent.py``), keyed (``profile_id``,
``channel``): ``email.marketing`` holds the account-wide ``suppression`` (reason, timestamp) and the
``list_suppressions`` (list-level consent). It shares the profiles' rate-limit bucket (75/s, 750/m). A deleted
profile's rows are marked with it (the profiles' dependents); the table is never scanned on its own.

``suppressions`` lists only the suppressed profiles, with the filter Klaviyo offers for it
(``greater-than(subscriptions.email.marketing.suppression.timestamp,1970-01-01T00:00:00Z)``: suppressed at any
time), ``fields[profile]=email``, one row per entry of the profile's ``suppression`` (reason, timestamp), keyed
(``profile_id``, ``reason``). It costs one request per 100 suppressed profiles, whatever the number of profiles,
and is read whole and replaced each run: a suppression lifted (or a profile deleted) is gone on the next load,
which a merge on the suppression time could not see.
"""

from __future__ import annotations

from ....types import BOOL, JSON, TEXT, TS
from ..spec import TableSpec

SUPPRESSED = "subscriptions.email.marketing.suppression.timestamp"  # the profiles' filter on suppression times

CONSENT: list[TableSpec] = [
    TableSpec("subscriptions", "/api/profiles", "profile",
              dict(channel=TEXT, consent=TEXT, can_receive=BOOL, consent_timestamp=TS, last_updated=TS, method=TEXT,
                   method_detail=TEXT, custom_method_detail=TEXT, double_optin=BOOL, suppression=JSON,
                   list_suppressions=JSON, phone_number=TEXT, valid_until=TS, metadata=JSON, updated=TS),
              75, 750, 100, cursor="updated", lower_op="greater-than", upper_op="less-than", sort="updated",
              extra_params={"additional-fields[profile]": "subscriptions", "fields[profile]": "updated"},
              id_column="profile_id", primary_key=("profile_id", "channel"), bucket="profiles", nested="subscriptions"),
    TableSpec("suppressions", "/api/profiles", "profile", dict(email=TEXT, reason=TEXT, timestamp=TS), 75, 750, 100,
              partitions=((f"greater-than({SUPPRESSED},1970-01-01T00:00:00Z)", {}),),
              extra_params={"additional-fields[profile]": "subscriptions", "fields[profile]": "email"},
              id_column="profile_id", primary_key=("profile_id", "reason"), bucket="profiles", nested="suppressions"),
]  # fmt: skip
