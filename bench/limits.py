"""Benchmark: what the spending limits and the guest's new session key cost a shopper's
``POST tryon/api/jobs/``, against the same requests with every limit off, in the
same run.

    python -m bench.limits [--requests 200] [--rounds 3]

A guest starts a try-on as the button does (the garment list for the CSRF
cookie, then the ``POST``), each with a photo of their own. With the limits
(the defaults: the throttle, and a guest's try-on counted for the guest, their
address and all guests in one transaction, then a new session key) and without
them (``THROTTLE_RATE`` and every ``DAILY_QUOTA_*`` ``None``; the new session
key stays, it is not a setting). A signed-in shopper (one counter, no new key)
is measured beside them. The rounds alternate the cases, so they see the same
machine load. Each figure is the median, over every request, of the CPU time
the request took (the test client runs the view in this process; CPU time,
unlike the clock, does not count the time other processes of a busy machine
held the CPU).

The photo is small (600 x 1200), so the intake, which the limits do not touch,
weighs as little as it does for any shopper.
"""

import argparse
import io
import statistics
import sys
import time

from bench import common

JOBS_URL = "/tryon/api/jobs/"
GARMENTS_URL = "/tryon/api/garments/"
LIMITS_OFF = {
    "THROTTLE_RATE": None,
    "DAILY_QUOTA_USER": None,
    "DAILY_QUOTA_GUEST": None,
    "DAILY_QUOTA_ADDRESS": None,
    "DAILY_QUOTA_ALL_GUESTS": None,
}


def photos(count, seed):
    """``count`` JPEG photos, each different (a reused photo would not be counted)."""
    return [
        common.jpeg_bytes((600, 1200), ((seed * 7 + n) % 256, n * 5 % 256, 120))
        for n in range(count)
    ]


def time_posts(make_client, garment, pictures):
    """CPU milliseconds of this process for each ``POST``, each from the client
    ``make_client()`` gives (the server's work: the test client runs it in-process)."""
    from django.core.cache import cache

    timings = []
    for picture in pictures:
        cache.clear()  # the throttle counts in the cache: each request is its own
        client = make_client()
        client.get(GARMENTS_URL)
        upload = io.BytesIO(picture)
        upload.name = "me.jpg"
        started = time.process_time()
        answer = client.post(
            JOBS_URL, {"garment": garment.pk, "consent": "true", "person_image": upload}
        )
        timings.append((time.process_time() - started) * 1000)
        if answer.status_code != 201:
            raise RuntimeError(f"The API refused a try-on: {answer.status_code} {answer.content}")
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="Per case and round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    # Every cap counts, with room for every request of the run: the cost of
    # counting is measured, not refusals (the guest's own cap is the default's).
    limits = {
        "API_KEY": "bench",
        "REUSE_RESULTS": False,
        "THROTTLE_RATE": "1000000/min",
        "DAILY_QUOTA_USER": 10**9,
        "DAILY_QUOTA_ADDRESS": 10**9,
        "DAILY_QUOTA_ALL_GUESTS": 10**9,
    }
    common.setup_django(limits)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from django_tryon.models import DailyUsage

    garment = common.make_garments()["upper_body"]
    user = get_user_model().objects.create_user("bench")

    def signed_in():
        client = Client()
        client.force_login(user)
        return client

    cases = {
        "guest, limits on": (Client, limits),
        "guest, limits off": (Client, {**limits, **LIMITS_OFF}),
        "signed-in, limits on": (signed_in, limits),
    }
    timings = {name: [] for name in cases}
    for round_number in range(args.rounds):
        for offset, (name, (make_client, tryon)) in enumerate(cases.items()):
            settings.TRYON = tryon
            DailyUsage.objects.all().delete()
            seed = round_number * len(cases) + offset
            timings[name] += time_posts(make_client, garment, photos(args.requests, seed))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    on, off = medians["guest, limits on"], medians["guest, limits off"]
    print(
        f"Shopper POST, {args.requests} requests x {args.rounds} rounds per case "
        f"(600 x 1200 JPEG, SQLite):"
    )
    for name, median in medians.items():
        print(f"  {name:<22}: {median:6.2f} ms CPU, median")
    print(f"  limits on / off (guest) : {on / off:.2f}x ({on - off:+.2f} ms)")
    common.emit({"medians_ms": medians, "ratio": on / off})
    return 0


if __name__ == "__main__":
    sys.exit(main())
