"""The benchmarks run, at a tiny size: ``python -m bench --quick`` prints every figure
and the summary table. (The figures themselves are measured by ``python -m bench``
and recorded in docs/performance.md; timing them here would only test the machine.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Its own project and database: run in the first suite only (see the marker).
pytestmark = pytest.mark.run_once

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args):
    """``python -m <args>`` with its own Django project; its output, once it succeeded."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def quick_run():
    return run_bench("bench", "--quick")


def table_rows(output):
    table = output.split("Summary (quick run, tiny sizes")[1]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| benchmark")
    ]


def test_every_benchmark_reports_beside_its_baseline(quick_run):
    rows = table_rows(quick_run)
    benchmarks = {row[0] for row in rows}
    assert benchmarks == {
        "1 latency",
        "2 throughput",
        "3 database",
        "4 memory",
        "5 provider cost",
        "6 webhooks",
        "intake",
    }
    figures = {row[1] for row in rows}
    assert {"added latency, median", "added latency, p95", "queries per job"} <= figures
    assert "jobs/s at concurrency 4" in figures
    assert {"worker CPU per job, concurrency 1", "worker CPU busy, concurrency 4"} <= figures
    for row in rows:
        if row[0] != "2 throughput" or "CPU" not in row[1]:
            assert row[3] and row[4] and row[5].endswith("x"), row


def test_the_counted_figures_hold_even_at_a_tiny_size(quick_run):
    rows = {(row[0], row[1]): row for row in table_rows(quick_run)}
    # An in-flight pass costs the same whatever the number of jobs.
    in_flight = [int(row[2]) for (bench, figure), row in rows.items() if "in-flight pass" in figure]
    assert len(in_flight) == 2 and in_flight[0] == in_flight[1]
    # Every result pass: the in-flight pass's constant, less its release of
    # unchanged jobs, plus at most one write per job (results that arrive
    # together share one).
    results = {
        int(figure.rsplit(", ", 1)[1].split()[0]): int(row[2])
        for (bench, figure), row in rows.items()
        if figure.startswith("queries, results pass")
    }
    assert set(results) == {5, 20}
    for jobs, queries in results.items():
        assert in_flight[0] <= queries <= in_flight[0] - 1 + jobs
    # A job whose webhook arrived costs no provider query.
    pushed = rows[("6 webhooks", "provider queries per pushed job")]
    assert float(pushed[2]) == 0.0 and float(pushed[4]) >= 1.0
    # Reuse answers repeated tries without a paid task.
    cost = rows[("5 provider cost", "submits (paid tasks) per try-on")]
    assert float(cost[2]) < 0.5 and float(cost[4]) == 1.0


def test_the_cpu_figures_are_read_against_their_own_baselines(quick_run):
    rows = {(row[0], row[1]): row for row in table_rows(quick_run)}
    # Concurrency 1 is set beside the same jobs with the provider answering at once.
    single = rows[("2 throughput", "worker CPU per job, concurrency 1")]
    assert single[3] == "the same, answers at once" and single[5].endswith("x")
    value, at_once = float(single[2].split()[0]), float(single[4].split()[0])
    # The ratio is of the unrounded figures: within rounding of the printed ones.
    assert float(single[5].rstrip("x")) == pytest.approx(value / at_once, abs=0.02)
    # A worker whose calls wait on the network keeps a CPU far from full.
    for concurrency in (1, 4):
        busy = rows[("2 throughput", f"worker CPU busy, concurrency {concurrency}")][2]
        assert busy.endswith("% of one CPU")
        assert 0 < int(busy.split("%")[0]) < 100


def test_the_limits_benchmark_prints_every_case_and_the_ratio():
    output = run_bench("bench.limits", "--requests", "3", "--rounds", "1")
    for case in ("guest, limits on", "guest, limits off", "signed-in, limits on"):
        assert f"{case:<22}: " in output
    assert "limits on / off (guest) : " in output


def test_the_learning_benchmark_prints_each_spread_of_ratios_against_the_target():
    output = run_bench(
        "bench.learning", "--histories", "3", "--jobs", "20", "--warmup", "20", "--seed", "7"
    )
    lines = output.splitlines()
    for kind in ("upper_body", "lower_body", "full_body"):
        (index,) = [n for n, line in enumerate(lines) if line.strip().startswith(kind)]
        summary, listed = lines[index], lines[index + 1].split()
        ratios = [float(ratio) for ratio in listed]
        assert len(ratios) == 3 and ratios == sorted(ratios)
        # The learned schedule spends its queries where jobs finish: never far from
        # the best at its own budget, and (at the same budget) not far better either.
        assert all(0.5 < ratio < 3 for ratio in ratios)
        assert f"max {listed[-1]}x" in summary
        within = sum(ratio <= 1.15 for ratio in ratios)
        assert f"within 1.15x in {within} of 3" in summary
