"""Run every benchmark and print one table: each figure beside its baseline from the
same run, and the ratio.

    python -m bench            # the full run (about 6 minutes on two cores)
    python -m bench --quick    # every benchmark on a tiny size (seconds; for the tests)

The benchmarks (see docs/performance.md): added latency (``bench.latency``),
throughput (``bench.throughput``), database queries per pass
(``bench.database``), worker memory (``bench.memory``), provider calls per
try-on (``bench.cost``), results pushed by webhook (``bench.webhooks``) and
photo intake (``bench/intake.py``). Each runs in its own process. The latency
and webhook benchmarks spend most of their time waiting for the provider, so
they run beside the database, memory and cost benchmarks,
which count queries, bytes and calls rather than time; throughput and intake,
which time CPU work, run alone afterwards.
"""

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench import common

FULL = {
    "latency": [],
    # The worker's idle sleep bounds how soon a pushed result is taken (see
    # docs/performance.md, which also records the run at the default 1 s).
    "webhooks": ["--idle-interval", "0.1"],
    "database": [],
    "memory": [],
    "cost": [],
    "throughput": [],
    "intake": ["--repeat", "3", "--no-memory"],
}
QUICK = {
    "latency": ["--jobs", "2", "--warmup", "3", "--window", "2", "--scale", "0.05"],
    "webhooks": ["--jobs", "2", "--warmup", "2", "--window", "2", "--scale", "0.05"],
    "database": ["--sizes", "5,20", "--concurrency", "4"],
    "memory": ["--sizes", "0.2,1"],
    "cost": ["--processing-time", "0.05"],
    "throughput": [
        "--jobs",
        "48",
        "--levels",
        "1,4",
        "--latency",
        "0.05",
        "--wakeups",
        "3",
        "--rounds",
        "1",
    ],
    "intake": ["--megapixels", "0.5", "--browser-side", "640", "--repeat", "1", "--no-memory"],
}


def run_intake(args, timeout):
    """bench/intake.py is a script of its own: run it and read its printed figures."""
    done = subprocess.run(
        [sys.executable, str(common.ROOT / "bench" / "intake.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=common.ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/intake.py failed:\n{done.stdout}\n{done.stderr}")
    cases = []
    # A row of its speed table: photo, upload, then CPU ms and ratios (wall-time
    # ratios in brackets) of the bare decode, the intake and the API request.
    pattern = re.compile(
        r"^  ((?:browser |turned )?(?:JPEG|PNG) \d+x\d+)\s+([\d.]+ MB)\s+([\d.]+)"
        r"\s+([\d.]+)\s+[\d.]+x \([\d.]+x\)\s+([\d.]+)\s+[\d.]+x",
        re.MULTILINE,
    )
    for photo, size, decode_ms, intake_ms, api_ms in pattern.findall(done.stdout):
        cases.append(
            {
                "case": f"{photo}, {size}",
                "decode_ms": float(decode_ms),
                "intake_ms": float(intake_ms),
                "api_ms": float(api_ms),
            }
        )
    if not cases:
        raise RuntimeError(f"bench/intake.py printed no figures:\n{done.stdout}")
    return done.stdout.rstrip(), {"cases": cases}


def run_all(plan):
    texts, figures = {}, {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Both wait on the provider far more than they compute.
        latency = pool.submit(common.run_child, "latency", plan["latency"], timeout=900)
        webhooks = pool.submit(common.run_child, "webhooks", plan["webhooks"], timeout=900)
        for name in ("database", "memory", "cost"):
            texts[name], figures[name] = common.run_child(name, plan[name], timeout=600)
        texts["latency"], figures["latency"] = latency.result()
        texts["webhooks"], figures["webhooks"] = webhooks.result()
    texts["throughput"], figures["throughput"] = common.run_child(
        "throughput", plan["throughput"], timeout=900
    )
    texts["intake"], figures["intake"] = run_intake(plan["intake"], timeout=600)
    return texts, figures, time.monotonic() - started


def rows(figures):
    """The table's rows: (benchmark, figure, value, baseline, baseline value, ratio, target)."""
    out = []
    lat = figures["latency"]
    adaptive, naive = lat["adaptive"], lat["naive"]
    for key, label, unit, target in (
        ("median", "added latency, median", "s", "< 1 s"),
        ("p95", "added latency, p95", "s", "< 2.5 s"),
        ("queries_per_job", "queries per job", "", "<= naive"),
    ):
        out.append(
            (
                "1 latency",
                label,
                _fmt(adaptive[key], unit),
                "naive schedule (every 5 s)",
                _fmt(naive[key], unit),
                adaptive[key] / naive[key],
                target,
            )
        )
    for kind, figures_of_kind in adaptive["kinds"].items():
        out.append(
            (
                "1 latency",
                f"query schedule's own delay, mean, {kind}",
                _fmt(figures_of_kind["scheduled_mean"], "s"),
                "best schedule, same queries per job",
                _fmt(figures_of_kind["best_mean"], "s"),
                figures_of_kind["ratio_to_best"],
                "<= 1.15x",
            )
        )
    pushed, polled = figures["webhooks"]["webhook"], figures["webhooks"]["polling"]
    idle = f"IDLE_INTERVAL {pushed['idle_interval']:g} s"
    for key, label, target in (
        ("median", f"result after the provider finished, median ({idle})", ""),
        ("p95", f"result after the provider finished, p95 ({idle})", "< 0.3 s"),
    ):
        out.append(
            (
                "6 webhooks",
                label,
                _fmt(pushed[key], "s"),
                "polling, learned schedule",
                _fmt(polled[key], "s"),
                pushed[key] / polled[key],
                target,
            )
        )
    per_pushed_job = pushed["queries_of_pushed_jobs"] / max(1, pushed["pushed_jobs"])
    out.append(
        (
            "6 webhooks",
            "provider queries per pushed job",
            f"{per_pushed_job:.2f}",
            "polling, queries per job",
            f"{polled['queries_per_job']:.2f}",
            per_pushed_job / polled["queries_per_job"],
            "0",
        )
    )
    levels = figures["throughput"]["levels"]
    base = levels[0]
    for level in levels[1:]:
        out.append(
            (
                "2 throughput",
                f"jobs/s at concurrency {level['concurrency']}",
                f"{level['jobs_per_second']:.1f}",
                f"concurrency {base['concurrency']}",
                f"{base['jobs_per_second']:.1f}",
                level["ratio"],
                ">= 10x at 16" if level["concurrency"] == 16 else "",
            )
        )
    at_once = figures["throughput"]["at_once"]
    for level in levels:
        # The first level's jobs also ran with the provider answering at once.
        same_jobs_at_once = level["concurrency"] == at_once["concurrency"]
        out.append(
            (
                "2 throughput",
                f"worker CPU per job, concurrency {level['concurrency']}",
                f"{level['cpu_ms_per_job']:.2f} ms",
                "the same, answers at once" if same_jobs_at_once else "",
                f"{at_once['cpu_ms_per_job']:.2f} ms" if same_jobs_at_once else "",
                level["cpu_ms_per_job"] / at_once["cpu_ms_per_job"] if same_jobs_at_once else None,
                "< 5 ms",
            )
        )
    for level in levels:
        out.append(
            (
                "2 throughput",
                f"worker CPU busy, concurrency {level['concurrency']}",
                f"{level['cpu_share']:.0%} of one CPU",
                "",
                "",
                None,
                "far under 100 % (I/O-bound)",
            )
        )
    query_cpu = figures["throughput"].get("query_cpu_ms")
    if query_cpu:
        out.append(
            (
                "2 throughput",
                "CPU of one provider query, after the answer latency idle",
                f"{query_cpu['after_pause']:.2f} ms",
                "back to back",
                f"{query_cpu['back_to_back']:.2f} ms",
                query_cpu["after_pause"] / query_cpu["back_to_back"],
                "",
            )
        )
    for size in figures["database"]["sizes"]:
        jobs = size["jobs"]
        for key, label, baseline, per_job in (
            ("submit", "submit pass", "2 per job (mark + task id)", 2),
            ("in_flight", "in-flight pass, nothing changed", "1 per job", 1),
            ("results", "results pass", "1 per job", 1),
        ):
            out.append(
                (
                    "3 database",
                    f"queries, {label}, {jobs} jobs",
                    str(size[key]),
                    baseline,
                    str(per_job * jobs),
                    size[key] / (per_job * jobs),
                    "constant + at most 1 per change",
                )
            )
    small, *others = figures["memory"]["sizes"]
    for size in others:
        for key, label in (("heap_peak", "heap peak"), ("rss_growth", "RSS growth")):
            if size[key] is None or small[key] is None:
                continue
            out.append(
                (
                    "4 memory",
                    f"{label}, {size['result_bytes'] / common.MB:.1f} MB result",
                    _mb(size[key]),
                    f"{small['result_bytes'] / common.MB:.1f} MB result",
                    _mb(small[key]),
                    size[key] / small[key],
                    "flat (about 1x)",
                )
            )
    cost = figures["cost"]
    on, off = cost["with_reuse"], cost["without_reuse"]
    out.append(
        (
            "5 provider cost",
            "submits (paid tasks) per try-on",
            f"{on['submits_per_try']:.2f}",
            "reuse off",
            f"{off['submits_per_try']:.2f}",
            on["submits_per_try"] / off["submits_per_try"],
            "well under 1",
        )
    )
    out.append(
        (
            "5 provider cost",
            "all provider calls per try-on",
            f"{on['calls_per_try']:.2f}",
            "reuse off",
            f"{off['calls_per_try']:.2f}",
            on["calls_per_try"] / off["calls_per_try"],
            "",
        )
    )
    for case in figures["intake"]["cases"]:
        # The intake is the target; the API request around it (Django's own work on
        # top) is shown beside it.
        for figure, key, target in (
            ("intake", "intake_ms", "< 2x"),
            ("API request", "api_ms", ""),
        ):
            out.append(
                (
                    "intake",
                    f"{figure}, {case['case']}",
                    f"{case[key]:.1f} ms",
                    "bare Pillow decode",
                    f"{case['decode_ms']:.1f} ms",
                    case[key] / case["decode_ms"],
                    target,
                )
            )
    return out


def _fmt(value, unit):
    return f"{value:.2f} {unit}".strip()


def _mb(size):
    return f"{size / common.MB:.2f} MB"


def table(rows_):
    header = ("benchmark", "figure", "value", "baseline", "baseline value", "ratio", "target")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows_:
        *cells, ratio, target = row
        ratio_text = "" if ratio is None else f"{ratio:.2f}x"
        lines.append("| " + " | ".join([*cells, ratio_text, target]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: checks they run.")
    args = parser.parse_args(argv)
    texts, figures, elapsed = run_all(QUICK if args.quick else FULL)
    for name in ("latency", "throughput", "database", "memory", "cost", "intake"):
        print(texts[name].strip())
        print()
    print(f"Summary ({'quick run, tiny sizes' if args.quick else 'full run'}, {elapsed:.0f} s):")
    print()
    print(table(rows(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
