"""Benchmark 5, provider cost: provider calls per shopper try-on over a replayed
session of repeated tries, with result reuse (the default) and without.

    python -m bench.cost [--rounds 1]

Two shoppers (guests with their own sessions) use the shopper API as the
button does: ``POST tryon/api/jobs/`` with a photo, a garment and consent,
then ``GET`` until the job is done. Shopper A tries three garments with one
photo and comes back to them (ten tries, three distinct photo-and-garment
pairs), sometimes while the first try is still running; shopper B tries one
garment twice with one photo, then once with another photo (three tries,
two pairs). ``--rounds`` replays the session that many times with fresh
shoppers. The provider is the sandbox, in this process, and the worker runs
passes between the steps, as ``tryon_poll`` would.

Counted at the sandbox: submits (each a paid task) and queries (free), per
try-on. The baseline is the same session with ``REUSE_RESULTS`` off.
"""

import argparse
import io
import sys
import time

from bench import common

JOBS_URL = "/tryon/api/jobs/"

# (shopper, photo, garment, wait): wait=True lets the worker finish every job
# before the next step (the shopper looked at the result); False goes on at once.
SESSION = (
    ("a", "ava", "upper_body", False),
    ("a", "ava", "upper_body", True),  # asked again while it runs
    ("a", "ava", "upper_body", True),  # and again once it is done
    ("a", "ava", "lower_body", True),
    ("a", "ava", "full_body", False),
    ("a", "ava", "full_body", True),
    ("a", "ava", "upper_body", True),
    ("a", "ava", "lower_body", True),
    ("a", "ava", "full_body", True),
    ("a", "ava", "upper_body", True),
    ("b", "ben", "upper_body", True),
    ("b", "ben", "upper_body", True),
    ("b", "ben-2", "upper_body", True),
)


def photos():
    from django_tryon.sandbox import samples

    slugs = [model.slug for model in samples.SAMPLE_MODELS]
    return {
        "ava": samples.encode(samples.model_photo(slugs[0])),
        "ben": samples.encode(samples.model_photo(slugs[1])),
        "ben-2": samples.encode(samples.model_photo(slugs[1], seed=1)),
    }


def replay(reuse, rounds, sandbox, garments, pictures, worker):
    from django.conf import settings
    from django.test import Client

    from django_tryon.models import ACTIVE_STATUSES, TryOnJob

    settings.TRYON = {**settings.TRYON, "REUSE_RESULTS": reuse}
    sandbox.reset()
    tries = reused = 0
    for _ in range(rounds):
        shoppers = {"a": Client(), "b": Client()}
        for shopper, photo, kind, wait in SESSION:
            upload = io.BytesIO(pictures[photo])
            upload.name = "me.jpg"
            answer = shoppers[shopper].post(
                JOBS_URL,
                {"garment": garments[kind].pk, "consent": "true", "person_image": upload},
            )
            if answer.status_code not in (200, 201):
                raise RuntimeError(
                    f"The API refused a try-on: {answer.status_code} {answer.content}"
                )
            tries += 1
            reused += answer.json()["reused"]
            job_url = f"{JOBS_URL}{answer.json()['id']}/"
            while wait and TryOnJob.objects.filter(status__in=ACTIVE_STATUSES).exists():
                worker.run_pass()
                time.sleep(0.05)
            if wait and shoppers[shopper].get(job_url).json()["status"] != "succeeded":
                raise RuntimeError("A try-on did not succeed.")
    requests = sandbox.stats()["requests"]
    return {
        "reuse": reuse,
        "tries": tries,
        "reused": reused,
        "submits": requests.get("submit", 0),
        "queries": requests.get("query", 0),
        "submits_per_try": requests.get("submit", 0) / tries,
        "calls_per_try": (requests.get("submit", 0) + requests.get("query", 0)) / tries,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--processing-time", type=float, default=0.3, help="The sandbox's.")
    args = parser.parse_args(argv)
    common.setup_django(
        {
            "API_KEY": "bench",
            "POLL_INTERVAL": 0.2,
            "THROTTLE_RATE": None,
            "DAILY_QUOTA_GUEST": None,
            "DAILY_QUOTA_USER": None,
            "DAILY_QUOTA_ADDRESS": None,
            "DAILY_QUOTA_ALL_GUESTS": None,
        }
    )
    from django.conf import settings

    from django_tryon.sandbox import SandboxServer
    from django_tryon.worker import Worker

    pictures = photos()
    with SandboxServer(processing_time=args.processing_time, result_mode="plain") as sandbox:
        settings.TRYON = {**settings.TRYON, "BASE_URL": sandbox.url}
        garments = common.make_garments()
        with Worker(worker_id="bench-cost") as worker:
            results = [
                replay(reuse, args.rounds, sandbox, garments, pictures, worker)
                for reuse in (True, False)
            ]
    print("Provider calls per shopper try-on, a replayed session of repeated tries:")
    for r in results:
        label = "reuse on " if r["reuse"] else "reuse off"
        print(
            f"  {label}: {r['tries']} try-ons, {r['reused']} answered by an earlier job, "
            f"{r['submits']} submits ({r['submits_per_try']:.2f} per try-on), "
            f"{r['queries']} queries; all calls {r['calls_per_try']:.2f} per try-on"
        )
    common.emit({"with_reuse": results[0], "without_reuse": results[1]})


if __name__ == "__main__":
    sys.exit(main())
