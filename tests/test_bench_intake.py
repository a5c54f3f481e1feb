"""The intake benchmark runs, at a small size, and shows memory flat in the upload's size."""

import importlib.util
from pathlib import Path

import pytest

from django_tryon.models import TryOnJob

BENCH = Path(__file__).resolve().parent.parent / "bench" / "intake.py"


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("bench_intake", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_the_benchmark_prints_both_figures_and_the_ratio(bench, capsys):
    bench.main(["--megapixels", "0.5", "--repeat", "1", "--no-rss"])
    out = capsys.readouterr().out
    assert out.count("bare Pillow decode") == 3
    assert out.count("API intake (201)") == 3
    assert out.count("ratio API / decode") == 3
    # Warm-up, timed run and traced run, for each of the three qualities.
    assert TryOnJob.objects.count() == 9


@pytest.mark.django_db
def test_the_heap_does_not_grow_with_the_upload(bench, settings):
    # Spool uploads to disk from 64 KB on, as Django does from 2.5 MB on.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    small = bench.measure(bench.make_jpeg(2.0, quality=60), repeat=1)
    large = bench.measure(bench.make_jpeg(2.0, quality=98), repeat=1)
    grown = large["upload_bytes"] - small["upload_bytes"]
    assert grown > 1024 * 1024
    assert large["api_heap_peak"] - small["api_heap_peak"] < grown / 4
    assert large["api_heap_peak"] < large["upload_bytes"]
    assert small["time_ratio"] > 0 and large["decode_seconds"] > 0


@pytest.mark.slow
def test_resident_memory_is_measured_in_fresh_processes(bench, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bench.make_jpeg(12.0, quality=60))
    decode = bench.rss_growth("decode", photo)
    api = bench.rss_growth("api", photo)
    # The full decode holds 12 MP x 4 bytes; the intake decodes at half scale.
    assert decode > 40 * 1024 * 1024
    assert api < decode / 2
