"""Further Klaviyo list endpoints: tag groups, coupon codes, push tokens, custom and mapped metrics,
universal content, accounts and reviews.

Values follow Klaviyo's OpenAPI revision 2026-07-15 (these endpoints are not in the digest; the sandbox reads
their rules from its rules file, generated from the OpenAPI file); ``tests/test_table_specs.py`` and
``tests/test_table_families.py`` check them. Where the API offers no time filter and no time attribute that moves
with a change (tag groups, push tokens, accounts), the table is read whole and replaced on every run; where a
record has an ``updated`` the API does not filter on (custom and mapped metrics, reviews), it is merged and
the interval is kept on the client, as for metrics. Coupon codes must be listed per coupon
(``filter=any(coupon.id,[...])`` is required): the coupons are listed first (``fields[coupon]=id``) and their
codes read ``COUPON_BATCH`` coupons at a time.
"""

from __future__ import annotations

from ....types import BOOL, INT, JSON, TEXT, TS
from ..spec import Parent, TableSpec

# Coupons named in one coupon-codes request. The OpenAPI file gives no limit for ``any`` lists; 100 is the
# largest page of both endpoints and keeps the URL well under common limits (ids of up to ~60 characters).
COUPON_BATCH = 100

MORE: list[TableSpec] = [
    TableSpec("tag-groups", "/api/tag-groups", "tag-group", dict(name=TEXT, exclusive=BOOL, default=BOOL), 3, 60, 25),
    TableSpec("coupon-codes", "/api/coupon-codes", "coupon-code", dict(unique_code=TEXT, expires_at=TS, status=TEXT),
              350, 3500, 100, to_one=("coupon", "profile"),
              parent=Parent("coupons", column="coupon_id", fields="id", filter="coupon.id", batch=COUPON_BATCH)),
    TableSpec("push-tokens", "/api/push-tokens", "push-token",
              dict(created=TS, token=TEXT, enablement_status=TEXT, platform=TEXT, vendor=TEXT, background=TEXT,
                   recorded_date=TEXT, metadata=JSON),
              10, 150, 100, to_one=("profile",)),
    TableSpec("custom-metrics", "/api/custom-metrics", "custom-metric", dict(name=TEXT, created=TS, updated=TS, definition=JSON),
              3, 60, None, cursor="updated"),
    TableSpec("mapped-metrics", "/api/mapped-metrics", "mapped-metric", dict(updated=TS), 3, 60, None, cursor="updated",
              to_one=("metric", "custom-metric")),
    TableSpec("universal-content", "/api/template-universal-content", "template-universal-content",
              dict(name=TEXT, definition=JSON, created=TS, updated=TS, screenshot_status=TEXT, screenshot_url=TEXT),
              75, 750, 100, cursor="updated", lower_op="greater-or-equal", upper_op="less-than", sort="updated"),
    TableSpec("accounts", "/api/accounts", "account",
              dict(test_account=BOOL, contact_information=JSON, industry=TEXT, timezone=TEXT, preferred_currency=TEXT,
                   public_api_key=TEXT, locale=TEXT),
              1, 15, None),
    TableSpec("reviews", "/api/reviews", "review",
              dict(email=TEXT, status=JSON, verified=BOOL, review_type=TEXT, created=TS, updated=TS, images=JSON,
                   product=JSON, rating=INT, author=TEXT, content=TEXT, title=TEXT, smart_quote=TEXT, public_reply=JSON),
              10, 150, 100, cursor="updated", sort="updated", to_one=("item",)),
]  # fmt: skip
