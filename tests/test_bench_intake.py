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
    bench.main(["--megapixels", "0.5", "--repeat", "1", "--no-memory"])
    out = capsys.readouterr().out
    assert out.count("bare Pillow decode :") == 2
    assert out.count("API intake (201)") == 2
    assert out.count("ratio API / decode") == 2
    assert "JPEG 816x612," in out and "PNG 816x612," in out
    stages = out.split("Where the time goes")[1].splitlines()[2:]
    assert [row.split()[:2] for row in stages] == [["JPEG", "816x612"], ["PNG", "816x612"]]
    # A first post, then a warm-up and a timed run by each clock (CPU, wall), for the
    # photo as JPEG and as PNG.
    assert TryOnJob.objects.count() == 2 * 5


@pytest.mark.django_db
def test_a_refused_upload_is_shown_refused_with_its_code(bench, settings, capsys):
    settings.TRYON = {**bench.BENCH_TRYON, "MAX_UPLOAD_BYTES": 64 * 1024}
    bench.BENCH_TRYON = settings.TRYON
    results = bench.measure(bench.encode(bench.camera_picture(0.5), "PNG"), 1, "big.png")
    assert (results["status"], results["refused"]) == (413, "too_large_upload")
    bench.print_speed([("PNG", (816, 612), results)], 1)
    assert "API refused (413 too_large_upload) in" in capsys.readouterr().out
    assert not TryOnJob.objects.exists()


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


@pytest.mark.slow
def test_the_intake_estimate_covers_what_the_process_holds(bench, tmp_path):
    """The memory the intake reckons before decoding (what INTAKE_MAX_DECODED_BYTES is
    compared with) is at least what its process really grows by, Pillow's and the
    decoders' own buffers included, for each kind of decode."""
    picture = bench.camera_picture(4)
    cases = {
        "photo.png": bench.encode(picture, "PNG"),  # decoded whole, then resized
        "photo.webp": bench.encode(picture, "WEBP", quality=80),  # libwebp's buffers
        "photo.jpg": bench.encode(picture, "JPEG", quality=90, progressive=True),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        estimate = bench.estimate(data)
        measured = bench.rss_case("api", path)
        assert measured["answers"] == [[201, None]], name
        # A few MB of request and allocator overhead beside the pictures.
        assert measured["rss_growth"] < estimate + 6 * 1024 * 1024, name
        assert measured["rss_growth"] > estimate / 3, name
