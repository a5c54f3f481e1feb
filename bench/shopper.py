"""What the shopper waits for, in a real browser: ``python -m bench.shopper``.

Debian's Chromium (through Playwright) tries garments on in the example shop, with
the sandbox provider taking log-normal times (median 10 s, sigma 0.35, as real
providers spread) and a real worker process, over an emulated mobile link
(Chromium's network emulation: 5 Mbit/s up, 20 Mbit/s down, 40 ms round trip) with
a 12 MP phone photo. Each try-on is made twice at once, by two fresh shoppers with
the same provider time: one with the button as it is, one with the button as
released (``bench/baseline/django_tryon/tryon.js``, served in its place by a second
web server over the same database). The shopper's timeline, per try-on:

- upload: "Send my photo" to the job created (the ``tryon:submit`` event);
- pickup and submit: the job created to the provider's task made (``created_at``
  to ``submitted_at``);
- provider: the sandbox's time for the task;
- found and stored: the provider done to the result file stored (its mtime);
- on screen: the result stored to the picture loaded in the page;

then the total, the requests the page made for the job after creating it, and the
bytes of the photo it sent: p50 and p95 beside the released button's, and the ratio.

    python -m bench.shopper            # 20 try-ons each way after 3 warm-up ones, about 12 minutes
    python -m bench.shopper --quick    # 1 each, short provider times (the test suite)
    python -m bench.shopper --provider fashn   # a provider that pushes its end (webhooks)

The worker's query schedule starts from a history of 50 jobs drawn from the same
times, as a shop's worker does after its first hour.

With ``--provider fashn`` the sandbox speaks FASHN and calls the shop back when a
task ends (``WEBHOOK_BASE_URL``, as ``DEMO_PROVIDER=fashn make demo`` runs it); the
reads of a job awaiting its webhook are planned from a history of 100 pushed
results drawn from the same times. The released button reads on its own clock,
which is what the button did for a pushed job before its reads were planned. The
report adds the best possible (one read at the very moment the result is stored:
0 s late, one read) and what the planner would give at other read budgets,
computed from the same history and the try-ons' own times.
"""

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.example_shop import ExampleShop, launch_chromium
from bench.photos import phone_photo
from django_tryon.api.reads import READ_SHARE, clock_times, lateness, mean_reads, plan_reads

NEW, BASELINE = "new", "released"
SETTINGS = {NEW: "bench.shopper_settings", BASELINE: "bench.shopper_baseline_settings"}
MBIT = 1_000_000 / 8  # bytes per second
HISTORY = 50
PUSHED_HISTORY = 100  # the read plan's window (django_tryon.api.timing.PUSH_SAMPLES)

# Times in the page, as epoch milliseconds (the clock the server's rows use):
# "Send my photo", the job created, the picture loaded, and an error if any.
RECORD_TIMES = """
window.bench = {};
(function () {
  function now() { return performance.timeOrigin + performance.now(); }
  document.addEventListener("submit", function () { window.bench.send = now(); }, true);
  document.addEventListener("tryon:submit", function (event) {
    window.bench.created = now();
    window.bench.jobId = event.detail.jobId;
  });
  document.addEventListener("load", function (event) {
    if (event.target.matches && event.target.matches("[data-tryon-result-image]")) {
      window.bench.shown = now();
    }
  }, true);
  document.addEventListener("tryon:error", function (event) {
    window.bench.error = event.detail.code + ": " + event.detail.message;
  });
})();
"""

# (label, key, unit) of each row of the report.
PHASES = [
    ("upload (Send to job created)", "upload", "s"),
    ("pickup and submit", "pickup", "s"),
    ("provider", "provider", "s"),
    ("found and stored", "stored", "s"),
    ("on screen (stored to picture)", "on_screen", "s"),
    ("total (Send to picture)", "total", "s"),
    ("browser requests per job", "requests", ""),
    ("photo bytes sent", "bytes", "MB"),
]


@dataclass
class Shopper:
    """One fresh shopper (a browser context of their own) at the product page."""

    variant: str
    context: object
    page: object
    requests: list = field(default_factory=list)
    # (time, status, check_again_in, check_again_planned) of job reads
    answers: list = field(default_factory=list)


def provider_times(count, median, sigma, seed):
    rng = random.Random(seed)
    return [median * math.exp(rng.gauss(0.0, sigma)) for _ in range(count)]


HISTORY_SNIPPET = """
from datetime import timedelta
from django.utils import timezone
from django_tryon.models import Garment, TryOnJob
now = timezone.now()
garments = list(Garment.objects.all())[: %s]
for garment in garments:
    for row in %s:
        TryOnJob.objects.create(
            garment=garment,
            status="succeeded",
            source="admin",
            **{
                name: now + timedelta(seconds=value) if name.endswith("_at") else value
                for name, value in row.items()
            },
        )
"""


def seed_history(shop, times):
    """Jobs of the shop's past, for the worker to plan its queries from (it learns from
    the provider times of recent succeeded jobs of each garment's kind)."""
    rows = [
        {
            "provider": "ailabapi",
            "provider_seconds": seconds,
            "created_at": -60.0 * (index + 1),
            "finished_at": -60.0 * index,
        }
        for index, seconds in enumerate(times)
    ]
    shop.manage("shell", "-c", HISTORY_SNIPPET % ("None", json.dumps(rows)))


def seed_pushed_history(shop, times, seed):
    """Pushed results of the shop's past, for the server to plan the reads of a job
    awaiting its webhook from; returns their times from creation to result stored.
    Around each provider time, what the bench's shop adds (SQLite, the worker's idle
    sleep of 1 s): the pickup, and from the webhook to the result stored, each up to
    a second."""
    rng = random.Random(seed)
    rows, seen = [], []
    for index, seconds in enumerate(times):
        pickup, stored_in = rng.uniform(0.05, 1.0), rng.uniform(0.1, 1.0)
        created = -60.0 * (index + 1)
        rows.append(
            {
                "provider": "fashn",
                "provider_seconds": seconds,
                "created_at": created,
                "submitted_at": created + pickup,
                "pushed_at": created + pickup + seconds,
                "finished_at": created + pickup + seconds + stored_in,
            }
        )
        seen.append(pickup + seconds + stored_in)
    shop.manage("shell", "-c", HISTORY_SNIPPET % ("1", json.dumps(rows)))
    return seen


def open_shopper(browser, variant, product_url, photo, link):
    context = browser.new_context(viewport={"width": 412, "height": 900}, is_mobile=True)
    context.set_default_timeout(120_000)
    context.add_init_script(RECORD_TIMES)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", link)
    shopper = Shopper(variant, context, page)
    page.on("request", lambda request: shopper.requests.append(request))

    def answered(response):
        request = response.request
        if request.method == "GET" and "/tryon/api/jobs/" in request.url and response.ok:
            body = response.json()
            shopper.answers.append(
                (
                    time.time(),
                    body["status"],
                    body.get("check_again_in"),
                    body.get("check_again_planned"),
                )
            )

    page.on("response", answered)
    page.goto(product_url)
    page.get_by_role("button", name="Try it on").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[type=file]").first.set_input_files(str(photo))
    dialog.get_by_role("img", name="Your photo").wait_for(state="visible")
    dialog.get_by_label("I agree that my photo is sent").check()
    return shopper


def send(shopper):
    shopper.page.get_by_role("dialog").get_by_role("button", name="Send my photo").click()


def wait_for_picture(shopper, timeout_ms):
    shopper.page.wait_for_function("window.bench.shown || window.bench.error", timeout=timeout_ms)
    times = shopper.page.evaluate("window.bench")
    if times.get("error"):
        raise RuntimeError(f"{shopper.variant} button: the try-on failed: {times['error']}")
    return times


def _utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def job_row(database, job_id):
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT created_at, submitted_at, result_image, next_attempt_at, finished_at "
            "FROM django_tryon_tryonjob "
            "WHERE id = ?",
            (job_id.replace("-", ""),),
        ).fetchone()
    if row is None or row[1] is None or not row[2]:
        raise RuntimeError(f"job {job_id}: no submitted, stored row ({row})")
    return {
        "created": _utc(row[0]),
        "submitted": _utc(row[1]),
        "result": row[2],
        # The finding query's due time, and the job's end: the worker's finding step.
        "due": _utc(row[3]),
        "finished": _utc(row[4]),
    }


def pushes(args):
    """Whether the run's provider calls the shop back (webhooks)."""
    return args.provider == "fashn"


def timeline(shopper, times, row, media, provider_seconds):
    """The try-on's phases, in seconds (requests and bytes as counts)."""
    stored = (media / row["result"]).stat().st_mtime
    job_id = times["jobId"]
    posts = [r for r in shopper.requests if r.method == "POST" and "/tryon/api/jobs/" in r.url]
    job_path = f"/tryon/api/jobs/{job_id}/"
    reads = [r for r in shopper.requests if r.method == "GET" and job_path in r.url]
    return {
        "upload": (times["created"] - times["send"]) / 1000,
        "pickup": row["submitted"] - row["created"],
        "provider": provider_seconds,
        "stored": stored - (row["submitted"] + provider_seconds),
        "on_screen": times["shown"] / 1000 - stored,
        "total": times["shown"] / 1000 - times["send"] / 1000,
        "requests": len(reads),
        "bytes": int(posts[-1].all_headers()["content-length"]) / 1e6,
        # From the job's creation to its result stored: what a read plan is made from.
        "seen": stored - row["created"],
    }


def run(args):
    workdir = Path(tempfile.mkdtemp(prefix="tryon-shopper-bench-"))
    try:
        return _run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args, workdir):
    photo = workdir / "phone-photo.jpg"
    width, height = args.photo_size
    photo.write_bytes(phone_photo(width, height))
    link = {
        "offline": False,
        "latency": args.rtt_ms,
        "uploadThroughput": args.up_mbit * MBIT,
        "downloadThroughput": args.down_mbit * MBIT if args.down_mbit else -1,
    }
    times = provider_times(args.warmup + args.tryons, args.median, args.sigma, args.seed)
    shop = ExampleShop(
        workdir / "shop",
        settings=SETTINGS[NEW],
        processing_time=args.median,
        provider=args.provider,
    )
    (workdir / "shop").mkdir()
    shop.start()
    results = {NEW: [], BASELINE: []}
    if pushes(args):
        history = provider_times(PUSHED_HISTORY, args.median, args.sigma, args.seed + 1)
        results["history"] = seed_pushed_history(shop, history, args.seed + 2)
    else:
        seed_history(shop, provider_times(HISTORY, args.median, args.sigma, args.seed + 1))
    from playwright.sync_api import sync_playwright

    try:
        shop.run()
        baseline_url = shop.add_web(SETTINGS[BASELINE])
        urls = {NEW: shop.product_url(), BASELINE: shop.product_url(base=baseline_url)}
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            for index, seconds in enumerate(times):
                shop.control(processing_time=seconds, result_mode="plain")
                pair = [open_shopper(browser, v, urls[v], photo, link) for v in (BASELINE, NEW)]
                for shopper in pair:
                    send(shopper)
                timeout_ms = 1000 * (seconds + 120)
                measured = {}
                for shopper in pair:
                    observed = wait_for_picture(shopper, timeout_ms)
                    row = job_row(shop.database, observed["jobId"])
                    measured[shopper.variant] = timeline(
                        shopper, observed, row, shop.media, seconds
                    )
                    if args.verbose:
                        print(f"  {shopper.variant}: " + trail(shopper, row, shop.media))
                    shopper.context.close()
                warmup = index < args.warmup
                if not warmup:
                    for variant, figures in measured.items():
                        results[variant].append(figures)
                print(
                    f"{'warm-up' if warmup else 'try-on'} {index + 1}: provider {seconds:.2f} s; "
                    "on screen "
                    + ", ".join(f"{v} {measured[v]['on_screen']:.2f} s" for v in (NEW, BASELINE)),
                    flush=True,
                )
            browser.close()
    finally:
        shop.stop()
    return results


def trail(shopper, row, media):
    """The job reads of a try-on, in seconds from the result stored (negative: before)."""
    stored = (media / row["result"]).stat().st_mtime
    reads = " ".join(
        f"{at - stored:+.2f}:{status[:4]}:{hint}{'p' if planned else ''}"
        for at, status, hint, planned in shopper.answers
    )
    return (
        f"finding query due {row['due'] - stored:+.2f}, finished {row['finished'] - stored:+.2f}; "
        f"reads {reads}"
    )


def quantiles(values):
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0], ordered[0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), cuts[94]


def _fmt(value, unit):
    if unit == "":
        return f"{value:.1f}"
    return f"{value:.2f} {unit}"


def report(results, args):
    lines = [
        f"{args.tryons} try-ons each way; provider times log-normal, median {args.median} s, "
        f"sigma {args.sigma}; link {args.up_mbit:g} Mbit/s up, "
        f"{f'{args.down_mbit:g} Mbit/s' if args.down_mbit else 'unlimited'} down, "
        f"{args.rtt_ms} ms RTT; photo {args.photo_size[0]}x{args.photo_size[1]}",
        "",
        "| phase | p50 | p95 | released button p50 | p95 | ratio p50 | ratio p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    figures = {}
    for label, key, unit in PHASES:
        new = quantiles([r[key] for r in results[NEW]])
        old = quantiles([r[key] for r in results[BASELINE]])
        figures[key] = {"new": new, "baseline": old}
        ratios = [
            f"{n / o:.2f}x" if o > 0 and key not in ("pickup", "provider") else ""
            for n, o in zip(new, old, strict=True)
        ]
        lines.append(
            f"| {label} | {_fmt(new[0], unit)} | {_fmt(new[1], unit)} | {_fmt(old[0], unit)} "
            f"| {_fmt(old[1], unit)} | {ratios[0]} | {ratios[1]} |"
        )
    if "history" in results:
        push_lines, figures["push"] = push_report(results)
        lines += ["", *push_lines]
    return "\n".join(lines), figures


# Shares of the clock's reads per job the planner is shown at, beside the one the
# server uses: what more reads would buy.
MORE_READS = (1.25, 1.5, 2.0, 3.0)


def push_report(results):
    """The wait once the result is stored, for a provider that pushes its end: the
    planned reads beside the clock (the released button) and the best possible; then
    the planner, computed on the same history and the try-ons' own times, at its
    share of the clock's reads and at larger ones."""

    def column(variant, key):
        values = [r[key] for r in results[variant]]
        return {"p50": quantiles(values)[0], "p95": quantiles(values)[1]}, values

    shown = {v: column(v, "on_screen") for v in (NEW, BASELINE)}
    reads = {v: column(v, "requests") for v in (NEW, BASELINE)}
    figures = {
        "on_screen": {
            "planned": shown[NEW][0],
            "clock": shown[BASELINE][0],
            "best": {"p50": 0.0, "p95": 0.0},
        },
        "reads": {
            v_name: {**reads[v][0], "mean": statistics.mean(reads[v][1])}
            for v_name, v in (("planned", NEW), ("clock", BASELINE))
        },
    }
    figures["reads"]["best"] = {"p50": 1.0, "p95": 1.0, "mean": 1.0}

    def row(label, section, stat, unit):
        planned, clock, best = (figures[section][k][stat] for k in ("planned", "clock", "best"))
        ratio = f"{planned / clock:.2f}x" if clock > 0 else ""
        return (
            f"| {label} | {_fmt(planned, unit)} | {_fmt(clock, unit)} | {_fmt(best, unit)} "
            f"| {ratio} |"
        )

    lines = [
        "A provider that pushes its end (webhooks): from the result stored to the picture",
        "",
        "| figure | planned reads | own clock (released) | best possible | planned / clock |",
        "|---|---|---|---|---|",
        row("on screen (stored to picture), p50", "on_screen", "p50", "s"),
        row("on screen (stored to picture), p95", "on_screen", "p95", "s"),
        row("browser reads per job, mean", "reads", "mean", ""),
        row("browser reads per job, p50", "reads", "p50", ""),
        row("browser reads per job, p95", "reads", "p95", ""),
    ]
    # Every try-on of both shoppers: from the job's creation to its result stored.
    seen = [r["seen"] for variant in (NEW, BASELINE) for r in results[variant]]
    clock = clock_times(max(seen) + 1)
    late = lateness(clock, seen)
    lines += [
        "",
        "The planner on the same history, at more reads (computed: from the result stored",
        "to the read at the server, without the read's answer and the picture's load)",
        "",
        "| reads | reads per job, mean | late p50 | late p95 |",
        "|---|---|---|---|",
        f"| the clock | {mean_reads(clock, seen):.2f} | {quantiles(late)[0]:.2f} s "
        f"| {quantiles(late)[1]:.2f} s |",
    ]
    figures["planner"] = {}
    for share in (READ_SHARE, *MORE_READS):
        plan = plan_reads(results["history"], share)
        late = lateness(list(plan.times), seen)
        label = f"{share:g}x the clock's" + (" (the server's)" if share == READ_SHARE else "")
        figures["planner"][f"{share:g}"] = {
            "reads": mean_reads(list(plan.times), seen),
            "late": quantiles(late),
        }
        lines.append(
            f"| {label} | {mean_reads(list(plan.times), seen):.2f} | {quantiles(late)[0]:.2f} s "
            f"| {quantiles(late)[1]:.2f} s |"
        )
    return lines, figures


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 try-on, short, small photo")
    parser.add_argument("--tryons", type=int, default=20)
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="try-ons first, not counted (the server learns how long storing a result takes)",
    )
    parser.add_argument("--median", type=float, default=10.0, help="provider time, s")
    parser.add_argument("--sigma", type=float, default=0.35)
    parser.add_argument("--up-mbit", type=float, default=5.0)
    parser.add_argument("--down-mbit", type=float, default=0.0, help="0: not limited")
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--photo-size", type=int, nargs=2, default=(3000, 4000))
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--provider",
        choices=("ailab", "fashn"),
        default="ailab",
        help="the sandbox's protocol: ailab (polled) or fashn (calls the shop back)",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--verbose", action="store_true", help="print each job read: when, status, check_again_in"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tryons, args.warmup, args.median = 1, 0, 1.5
        args.up_mbit, args.photo_size = 50.0, (1500, 2000)
    return args


def main(argv=None):
    args = parse(argv)
    started = time.monotonic()
    results = run(args)
    text, figures = report(results, args)
    print()
    print(text)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    sys.exit(main())
