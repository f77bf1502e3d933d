"""Sends the dashboard test's events with Segment's own Python client
(segment-analytics-python), as an app would, and exits non-zero if the
client reports any failure.

usage: send_events.py HOST WRITE_KEY all|ping

`all` sends, over the last hour with explicit timestamps (so the funnel's
order is certain): `Product Viewed` by 5 users, `Added to Cart` by 3 of
them, `Order Completed` by 2 of those; page views of `/` (5 users, from
`https://news.example/`), `/pricing` (3) and `/docs` (1); one `Order
Completed` with a negative total, which the app's validate transform
rejects (a dead letter); and last `Newsletter Subscribed` by user-4.
`ping` sends one `Live Ping` by user-9 (stamped now).
"""

import sys
from datetime import datetime, timedelta, timezone

import segment.analytics as analytics


def main() -> int:
    host, write_key, what = sys.argv[1], sys.argv[2], sys.argv[3]
    errors = []
    analytics.write_key = write_key
    analytics.host = host
    analytics.max_retries = 0
    analytics.on_error = lambda error, items: errors.append(repr(error))
    now = datetime.now(timezone.utc)
    if what == "all":
        start = now - timedelta(minutes=50)
        users = [f"user-{i}" for i in range(5)]
        for i, user in enumerate(users):
            at = start + timedelta(minutes=i)
            analytics.page(user, name="Home", properties={"path": "/", "referrer": "https://news.example/"}, timestamp=at)
            analytics.track(user, "Product Viewed", {"sku": "tea"}, timestamp=at + timedelta(seconds=10))
            if i < 3:
                analytics.page(user, name="Pricing", properties={"path": "/pricing"}, timestamp=at + timedelta(seconds=20))
                analytics.track(user, "Added to Cart", {"sku": "tea"}, timestamp=at + timedelta(seconds=30))
            if i < 2:
                analytics.track(
                    user,
                    "Order Completed",
                    {"total": 12.5, "order_id": f"order-{i}"},
                    timestamp=at + timedelta(seconds=40),
                )
        analytics.page("user-0", name="Docs", properties={"path": "/docs"}, timestamp=start + timedelta(minutes=10))
        # Rejected by the app's validate rule (total must be >= 0).
        analytics.track("user-3", "Order Completed", {"total": -1, "order_id": "bad"}, timestamp=start + timedelta(minutes=11))
        analytics.track("user-4", "Newsletter Subscribed", {}, timestamp=now - timedelta(seconds=5))
    elif what == "ping":
        analytics.track("user-9", "Live Ping", {}, timestamp=now)
    else:
        print(f"unknown batch {what!r}", file=sys.stderr)
        return 2
    analytics.flush()
    analytics.shutdown()
    if errors:
        print("errors:", errors, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
