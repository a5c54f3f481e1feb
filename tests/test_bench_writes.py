"""The job writes benchmark runs, at a tiny size, and prints both ways beside each other."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_writes_benchmark_prints_the_engine_beside_the_plain_update():
    done = subprocess.run(
        [sys.executable, "-m", "bench.writes", "--jobs", "12", "--rounds", "1", "--groups", "1,4"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = re.findall(
        r"^\s+(\d+) at a time: engine ([\d.]+) ms, plain ORM update ([\d.]+) ms \(([\d.]+)x",
        done.stdout,
        flags=re.MULTILINE,
    )
    assert [int(group) for group, *_ in lines] == [1, 4]
    (figures,) = [
        json.loads(line.removeprefix("BENCH-JSON "))
        for line in done.stdout.splitlines()
        if line.startswith("BENCH-JSON ")
    ]
    for (group, engine, plain, ratio), figure in zip(lines, figures["groups"], strict=True):
        assert figure["group"] == int(group)
        assert (engine, plain) == (f"{figure['engine_ms']:.3f}", f"{figure['plain_ms']:.3f}")
        assert ratio == f"{figure['engine_ms'] / figure['plain_ms']:.2f}"
