"""Sends events to a Tributary ingest endpoint with Segment's own Python
client (segment-analytics-python), exactly as an app would, and exits
non-zero if the client reports any failure.

usage: segment_send.py HOST WRITE_KEY COUNT
"""

import sys

import segment.analytics as analytics


def main() -> int:
    host, write_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    errors = []
    analytics.write_key = write_key
    analytics.host = host
    analytics.max_retries = 0
    analytics.on_error = lambda error, items: errors.append(repr(error))
    analytics.identify("user-1", {"plan": "pro", "email": "one@example.com"})
    for i in range(count):
        analytics.track(
            user_id=f"user-{i % 3}",
            event="Order Completed" if i % 2 else "Product Viewed",
            properties={"amount": i, "currency": "EUR"},
        )
    analytics.page(user_id="user-1", name="Home", properties={"path": "/"})
    analytics.group("user-1", "group-1", {"name": "Acme"})
    analytics.alias("user-1", "anon-1")
    analytics.flush()
    analytics.shutdown()
    if errors:
        print("errors:", errors, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
