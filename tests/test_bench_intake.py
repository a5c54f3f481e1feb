"""The intake benchmark runs, at a small size, and shows memory flat in the upload's size."""

import importlib.util
from pathlib import Path

import pytest

from django_tryon.models import TryOnJob

# Its own project and database: run in the first suite only (see the marker).
pytestmark = pytest.mark.run_once

BENCH = Path(__file__).resolve().parent.parent / "bench" / "intake.py"


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("bench_intake", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speed_rows(out):
    """The speed table's rows, split into cells: photo, size, upload, then CPU ms and
    ratios of the bare decode, the intake and the API request."""
    table = out.split("Target: intake < 2x.")[1].split("Where the time goes")[0]
    return [line.split() for line in table.strip().splitlines()[1:]]


def assert_ratio(printed, numerator, denominator):
    """``printed`` ("1.23x") is ``numerator / denominator``, as far as the figures'
    rounding to 0.1 ms and its own to 0.01 allow."""
    ratio = numerator / denominator
    rounding = ratio * (0.05 / numerator + 0.05 / denominator) + 0.005
    assert abs(float(printed.rstrip("x")) - ratio) <= rounding


@pytest.mark.django_db
def test_the_benchmark_prints_the_intake_and_the_request_beside_the_decode(bench, capsys):
    bench.main(["--megapixels", "0.5", "--browser-side", "640", "--repeat", "1", "--no-memory"])
    out = capsys.readouterr().out
    rows = speed_rows(out)
    assert [row[:-10] for row in rows] == [
        ["JPEG"],
        ["turned", "JPEG"],
        ["PNG"],
        ["browser", "JPEG"],
    ]
    assert [row[-10] for row in rows] == ["816x612", "816x612", "816x612", "640x480"]
    for row in rows:
        upload, unit, decode, intake, ratio, _wall, api, api_ratio, _api_wall = row[-9:]
        assert unit == "MB" and float(upload) > 0
        decode_ms, intake_ms, api_ms = float(decode), float(intake), float(api)
        assert_ratio(ratio, intake_ms, decode_ms)
        assert_ratio(api_ratio, api_ms, decode_ms)
    stages = out.split("Where the time goes")[1].split("The least possible")[0]
    paths = {row[:26].strip(): row.rsplit("   ", 1)[1] for row in stages.strip().splitlines()[2:]}
    # Pillow's JPEGs are clean: copied; the turned one and the PNG are re-encoded.
    assert paths == {
        "JPEG 816x612": "copied",
        "turned JPEG 816x612": "turned, re-encoded",
        "PNG 816x612": "re-encoded",
        "browser JPEG 640x480": "copied",
    }
    least = out.split("The least possible")[1].split("Moire")[0].strip().splitlines()[2:]
    for row in least:
        photo, cells = row[:26].strip(), row[26:].split()
        bare, least_ms, least_ratio, intake_ms, intake_ratio, *path = cells
        assert " ".join(path) == paths[photo]
        assert_ratio(least_ratio, float(least_ms), float(bare))
        assert_ratio(intake_ratio, float(intake_ms), float(bare))
    # For each photo a first post, then a warm-up and a timed run by each clock (CPU,
    # wall): the JPEG, the turned JPEG, the PNG and the browser-made JPEG.
    assert TryOnJob.objects.count() == 4 * 5
    moire = out.split("Moire")[1].strip().splitlines()[1:]
    assert len(moire) == 3 and all("bilinear (intake)" in line for line in moire)


def test_the_path_each_photo_takes_is_named(bench):
    picture = bench.camera_picture(6)
    assert bench.path_taken(bench.encode(picture, "JPEG", quality=90)) == "1/2 scale, re-encoded"
    odd = picture.resize((3265, 2449))  # 1633 px at half scale
    assert bench.path_taken(bench.encode(odd, "JPEG", quality=90)) == "1/2 scale, re-encoded"
    assert bench.path_taken(bench.encode(picture.resize((2100, 1575)), "JPEG")) == (
        "resized, re-encoded"
    )
    assert bench.path_taken(bench.encode(picture.resize((1000, 750)), "JPEG")) == "copied"
    turned = bench.encode(picture.resize((1000, 750)), "JPEG", exif=bench._phone_exif())
    assert bench.path_taken(turned) == "turned, re-encoded"
    turned_large = bench.encode(picture.resize((2100, 1575)), "JPEG", exif=bench._phone_exif())
    assert bench.path_taken(turned_large) == "resized, turned, re-encoded"


@pytest.mark.django_db
def test_the_least_possible_is_the_decode_and_the_encode_unless_copied(bench):
    picture = bench.camera_picture(0.5)
    copied, copied_path = bench.stages(bench.encode(picture, "JPEG", quality=90), 1)
    assert copied_path == "copied"
    assert copied["least possible"] == copied["intake decode"]
    turned, turned_path = bench.stages(
        bench.encode(picture, "JPEG", quality=90, exif=bench._phone_exif()), 1
    )
    assert turned_path == "turned, re-encoded"
    assert turned["least possible"] == turned["intake decode"] + turned["encode"]


def test_box_lets_through_the_detail_the_intake_filters(bench):
    """The figures the intake's filter was chosen by: past the output's finest detail,
    box keeps almost all of the stripes (moire), the intake's bilinear filter about as
    little as Lanczos."""
    for _frequency, output, amplitudes in bench.aliasing(frequencies=(0.48,)):
        assert output > 0.5
        assert amplitudes["box"] > 80
        assert amplitudes["bilinear (intake)"] < amplitudes["Lanczos"] + 5 < 60


@pytest.mark.django_db
def test_a_refused_upload_is_shown_refused_with_its_code(bench, settings, capsys):
    settings.TRYON = {**bench.BENCH_TRYON, "MAX_UPLOAD_BYTES": 64 * 1024}
    bench.BENCH_TRYON = settings.TRYON
    results = bench.measure(bench.encode(bench.camera_picture(0.5), "PNG"), 1, "big.png")
    assert (results["status"], results["refused"]) == (413, "too_large_upload")
    assert results["intake_cpu"] > 0
    bench.print_speed([("PNG", (816, 612), results)], 1)
    assert "refused (413 too_large_upload): intake " in capsys.readouterr().out
    assert not TryOnJob.objects.exists()


@pytest.mark.django_db
def test_the_heap_does_not_grow_with_the_upload(bench, settings):
    # Spool uploads to disk from 64 KB on, as Django does from 2.5 MB on.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    # Over INTAKE_MAX_SIDE: resized and re-encoded, whatever the upload's size.
    small = bench.measure(bench.make_jpeg(5.0, quality=60), repeat=1)
    large = bench.measure(bench.make_jpeg(5.0, quality=98), repeat=1)
    grown = large["upload_bytes"] - small["upload_bytes"]
    assert grown > 1024 * 1024
    assert large["api_heap_peak"] - small["api_heap_peak"] < grown / 4
    assert large["api_heap_peak"] < large["upload_bytes"]
    assert small["time_ratio"] > 0 and large["decode_seconds"] > 0


@pytest.mark.django_db
def test_a_copied_jpeg_holds_its_file_and_its_copy_only(bench, settings):
    """A JPEG stored as its own compressed data is read whole (at most the provider's
    3 MB) and copied once."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    data = bench.make_jpeg(2.0, quality=98)
    assert 1024 * 1024 < len(data) <= 3 * 1024 * 1024
    results = bench.measure(data, repeat=1)
    assert 2 * len(data) < results["api_heap_peak"] < 2 * len(data) + 1024 * 1024


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
        # Copied without its metadata: the file and its copy beside the pixels.
        "clean.jpg": bench.encode(picture.resize((2048, 1536)), "JPEG", quality=95),
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


def test_other_libraries_are_timed_only_where_installed(bench, monkeypatch, capsys):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    size, figures = bench.other_libraries(megapixels=0.5, repeat=1)
    assert size == (816, 612)
    assert figures["Pillow bare decode"] > 0
    others = {name: value for name, value in figures.items() if name != "Pillow bare decode"}
    assert len(others) == 3 and set(others.values()) == {None}
    bench.print_other_libraries(size, figures)
    out = capsys.readouterr().out
    assert "on a JPEG of 816x612" in out
    assert out.count(" -\n") == 3
