"""Photo intake: what is accepted, how it comes out, and every refusal."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin

from django_tryon import images, jpeg
from django_tryon.images import ImageRejected, NormalisedImage, normalise_image
from tests.support.images import (
    HTML,
    SVG,
    TEXT,
    animated_gif,
    animated_png,
    noisy_photo_bytes,
    photo_bytes,
    png_bomb,
    truncated_jpeg,
)

# The throttle counts in the cache, which outlives a test: each starts from zero.
pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def reopen(result):
    image = Image.open(io.BytesIO(result.content))
    image.load()
    return image


@pytest.fixture
def tryon(settings):
    def configure(**values):
        settings.TRYON = {**settings.TRYON, **values}

    return configure


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_and_webp_as_jpeg(image_format):
    result = normalise_image(upload(photo_bytes(image_format=image_format)))

    assert isinstance(result, NormalisedImage)
    assert (result.content_type, result.extension) == ("image/jpeg", "jpg")
    assert (result.width, result.height) == (600, 1200)
    out = reopen(result)
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (600, 1200))
    assert result.digest == hashlib.sha256(result.content).hexdigest()


def test_accepts_a_phone_jpeg_with_extra_pictures_as_a_still_photo():
    """Many phones write MPO: a JPEG followed by a depth map or a preview."""
    photo = Image.new("RGB", (4000, 3000), (200, 10, 10))
    depth = Image.new("RGB", (400, 300), (0, 0, 0))
    buffer = io.BytesIO()
    photo.save(buffer, format="MPO", save_all=True, append_images=[depth])
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"

    result = normalise_image(upload(buffer.getvalue()))

    assert (result.width, result.height) == (2000, 1500)  # the photo, at half scale
    assert reopen(result).getpixel((10, 10))[0] > 180


def test_accepts_heic_when_pillow_heif_is_installed():
    assert images.heif_available()
    result = normalise_image(upload(photo_bytes(image_format="HEIF"), name="IMG_0001.HEIC"))
    assert reopen(result).format == "JPEG"


def test_a_12_megapixel_photo_is_scaled_down_under_the_provider_limits():
    data = noisy_photo_bytes((4032, 3024))
    assert len(data) > 3 * 1024 * 1024  # bigger than the provider takes as it is

    result = normalise_image(upload(data))

    assert (result.width, result.height) == (2016, 1512)  # half scale, within 2048
    assert len(result.content) <= 3 * 1024 * 1024
    assert reopen(result).size == (result.width, result.height)
    assert abs(result.width / result.height - 4032 / 3024) < 0.01


def test_large_jpegs_are_decoded_at_reduced_scale(monkeypatch):
    requested = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        requested.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    normalise_image(upload(noisy_photo_bytes((4000, 3000))))
    assert requested == [(2000, 1500)]


@pytest.mark.parametrize(
    ("size", "scale", "final"),
    [
        ((4032, 3024), 2, (2016, 1512)),  # 12 MP phone photo: half scale, no resize
        ((3264, 2448), 2, (1632, 1224)),  # 8 MP: half scale lands at 80 %, kept
        ((8000, 6000), 4, (2000, 1500)),  # 48 MP
        ((4624, 3472), 2, (2048, 1538)),  # a quarter would be 1156 px: half, then resize
        ((2400, 1800), 1, (2048, 1536)),  # a half would be 1200 px: full, then resize
        ((2048, 1536), 1, (2048, 1536)),
    ],
)
def test_jpeg_dct_scale_and_final_size(size, scale, final, monkeypatch):
    assert images.jpeg_scale(size, 2048) == scale
    if size == (8000, 6000):
        return  # its 190 MB of pixels are not worth making: the scale says it all
    if final == tuple(-(-side // scale) for side in size):
        monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: pytest.fail("resized"))
    data = photo_bytes(size, quality=60)
    result = normalise_image(upload(data))
    assert (result.width, result.height) == final


def test_sides_never_reach_the_provider_maximum(tryon):
    tryon(INTAKE_MAX_SIDE=10_000, PROVIDER_MAX_SIDE=1000)
    result = normalise_image(upload(photo_bytes((3000, 1500), image_format="PNG")))
    assert (result.width, result.height) == (1000, 500)
    result = normalise_image(upload(photo_bytes((3000, 1500))))
    assert (result.width, result.height) == (750, 375)  # a quarter-scale JPEG decode


def test_shrinks_until_the_bytes_fit(tryon):
    tryon(PROVIDER_MAX_BYTES=150 * 1024)
    result = normalise_image(upload(noisy_photo_bytes((1600, 1200))))
    assert len(result.content) <= 150 * 1024
    assert result.width < 1600
    assert min(result.width, result.height) >= 256


def test_refuses_what_cannot_be_made_small_enough(tryon):
    tryon(PROVIDER_MAX_BYTES=2 * 1024)
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(noisy_photo_bytes((800, 800))))
    assert caught.value.code == "too_large_image"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    image = Image.new("RGB", (400, 300), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 200, 150))  # top left quarter red
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue())))

    out = reopen(normalise_image(upload(buffer.getvalue())))

    assert out.size == expected.size == ((400, 300) if orientation < 5 else (300, 400))
    for point in [(5, 5), (out.width - 5, 5), (5, out.height - 5)]:
        got, want = out.getpixel(point), expected.getpixel(point)
        assert all(abs(a - b) < 40 for a, b in zip(got, want, strict=True)), point


def test_every_kind_of_metadata_is_stripped():
    image = Image.new("RGB", (600, 800), (20, 160, 90))
    exif = image.getexif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="JPEG",
        exif=exif,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
        comment=b"shot at home",
        xmp=b"<x:xmpmeta><dc:creator>Secret Person</dc:creator></x:xmpmeta>",
    )
    result = normalise_image(upload(buffer.getvalue()))
    for secret in (b"Secret Person", b"shot at home", b"PhoneMaker", b"xmpmeta", b"sRGB"):
        assert secret not in result.content
    out = reopen(result)
    assert not out.getexif()
    assert set(out.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}

    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "The shopper")
    png = photo_bytes(image_format="PNG", pnginfo=text, exif=exif)
    out = reopen(normalise_image(upload(png, "p.png")))
    assert "Author" not in out.info
    assert not out.getexif()


# A JPEG that is already what the intake makes: copied without its metadata -----


def srgb_profile(name="sRGB"):
    """Pillow's sRGB profile, its description (UTF-16) naming it ``name``, four
    letters: for any other name, converted to sRGB as a wide-gamut phone's profile is."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    renamed = profile.replace("sRGB".encode("utf-16-be"), name.encode("utf-16-be"))
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(renamed)))
    assert description.startswith(name)
    return renamed


def with_metadata(picture, **save):
    """``picture`` as a JPEG (quality 85) with a phone's metadata: camera, GPS, date,
    an sRGB profile, XMP and a comment; and the same JPEG without any."""
    exif = picture.getexif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    plain = io.BytesIO()
    picture.save(plain, format="JPEG", quality=85, **save)
    tagged = io.BytesIO()
    picture.save(
        tagged,
        format="JPEG",
        quality=85,
        exif=exif,
        icc_profile=srgb_profile(),
        comment=b"shot at home",
        xmp=b"<x:xmpmeta><dc:creator>Secret Person</dc:creator></x:xmpmeta>",
        **save,
    )
    return tagged.getvalue(), plain.getvalue()


def camera_picture(size=(1200, 1600)):
    return Image.open(io.BytesIO(noisy_photo_bytes(size, quality=95))).convert("RGB")


def encodes(monkeypatch):
    """The intake's JPEG and PNG encodes, as they happen (each is Pillow's ``save``)."""
    calls = []
    original = Image.Image.save

    def spy(image, fp, format=None, **params):
        calls.append((image, format))
        return original(image, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", spy)
    return calls


@pytest.mark.parametrize("save", [{}, {"progressive": True}], ids=["baseline", "progressive"])
def test_a_clean_jpeg_is_stored_as_its_compressed_data_without_metadata(save, monkeypatch):
    """As the button sends photos: upright, sRGB, within INTAKE_MAX_SIDE. Not
    re-encoded (no second generation of loss): the same bytes, metadata left out."""
    upload_bytes, plain = with_metadata(camera_picture(), **save)
    encoded = encodes(monkeypatch)

    result = normalise_image(upload(upload_bytes))

    assert not encoded
    assert result.content == plain
    assert result.digest == hashlib.sha256(result.content).hexdigest()
    assert (result.width, result.height, result.extension) == (1200, 1600, "jpg")
    for secret in (b"Secret Person", b"shot at home", b"PhoneMaker", b"xmpmeta", b"sRGB"):
        assert secret not in result.content
    stored = reopen(result)
    assert stored.applist == [("APP0", jpeg.MINIMAL_JFIF[4:])]
    assert not stored.getexif() and "icc_profile" not in stored.info
    assert stored.tobytes() == Image.open(io.BytesIO(upload_bytes)).tobytes()


def test_the_api_stores_the_copy_and_its_digest(client, garment, media_root):
    """Through the shopper's API: the stored file is the upload without its metadata,
    and the job's digest is that file's."""
    from django_tryon.models import TryOnJob
    from tests.support.api import photo, post_job

    upload_bytes, plain = with_metadata(camera_picture((1536, 2048)))
    response = post_job(client, garment, photo(upload_bytes))
    assert response.status_code == 201, response.content
    job = TryOnJob.objects.get(pk=response.json()["id"])
    with job.person_image.open("rb") as stored:
        assert stored.read() == plain
    assert job.person_image.name.endswith(".jpg")
    assert job.photo_digest == hashlib.sha256(plain).hexdigest()


def test_a_garment_jpeg_is_copied_too():
    upload_bytes, plain = with_metadata(camera_picture((800, 800)))
    assert normalise_image(upload(upload_bytes), purpose="garment").content == plain


def uncopyable_jpegs():
    """JPEGs within INTAKE_MAX_SIDE that the intake must change: each is re-encoded."""
    picture = camera_picture((900, 1200))
    turned, wide, adobe, grey, cmyk, multi = (io.BytesIO() for _ in range(6))
    exif = picture.getexif()
    exif[0x0112] = 6
    picture.save(turned, format="JPEG", quality=85, exif=exif)
    picture.save(wide, format="JPEG", quality=85, icc_profile=srgb_profile("P3 w"))
    picture.save(adobe, format="JPEG", quality=85)
    # Adobe's segment saying YCbCr, as some editors write it.
    adobe_segment = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01"
    picture.convert("L").save(grey, format="JPEG", quality=85)
    picture.convert("CMYK").save(cmyk, format="JPEG", quality=85)
    picture.save(multi, format="MPO", save_all=True, append_images=[picture.resize((90, 120))])
    clean = adobe.getvalue()
    return {
        "orientation": turned.getvalue(),
        "colour profile": wide.getvalue(),
        "Adobe segment": clean[:2] + adobe_segment + clean[2:],
        "grey": grey.getvalue(),
        "CMYK": cmyk.getvalue(),
        "multi-picture": multi.getvalue(),
        "data after the end": clean + b"<script>alert(1)</script>",
    }


@pytest.mark.parametrize("case", list(uncopyable_jpegs()))
def test_a_jpeg_that_needs_changing_is_re_encoded_from_its_pixels(case, monkeypatch):
    data = uncopyable_jpegs()[case]
    encoded = encodes(monkeypatch)

    result = normalise_image(upload(data))

    assert len(encoded) == 1
    assert result.content != data
    stored = reopen(result)
    assert (stored.format, stored.mode) == ("JPEG", "RGB")
    assert stored.applist == [("APP0", jpeg.MINIMAL_JFIF[4:])]
    assert b"script" not in result.content
    if case == "orientation":
        assert stored.size == (1200, 900)


def test_a_clean_jpeg_over_the_provider_bytes_is_re_encoded_to_fit(tryon, monkeypatch):
    data = noisy_photo_bytes((1200, 900), quality=95)
    # Without a JFIF segment: its copy, given the minimal one, is 18 bytes larger.
    bare = data[:2] + data[2 + len(jpeg.MINIMAL_JFIF) :]
    tryon(PROVIDER_MAX_BYTES=len(bare))
    encoded = encodes(monkeypatch)
    result = normalise_image(upload(bare))
    assert encoded and len(result.content) <= len(bare)
    tryon(PROVIDER_MAX_BYTES=len(data))
    assert normalise_image(upload(bare)).content == data
    assert len(encoded) == 1


def test_a_clean_jpeg_that_does_not_decode_is_refused():
    """Its markers are in order, but its scan names a component the frame has not:
    the copy is made only of a picture that decodes."""
    data = bytearray(noisy_photo_bytes((900, 1200), quality=85))
    scan = data.index(b"\xff\xda")
    assert data[scan + 5] == 1  # the scan's first component: id 1
    data[scan + 5] = 9
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(bytes(data)))
    assert caught.value.code == "truncated_image"


def test_garment_keeps_transparency_as_png_and_person_is_flattened_on_white():
    png = photo_bytes((500, 500), (10, 20, 200, 0), image_format="PNG")

    garment = normalise_image(upload(png, "shirt.png"), purpose="garment")
    assert (garment.content_type, garment.extension) == ("image/png", "png")
    assert reopen(garment).mode == "RGBA"
    assert garment.as_content_file("shirt").name == "shirt.png"

    person = normalise_image(upload(png, "me.png"), purpose="person")
    assert person.extension == "jpg"
    assert reopen(person).getpixel((10, 10)) == (255, 255, 255)


def test_an_opaque_garment_becomes_jpeg():
    result = normalise_image(upload(photo_bytes((500, 500))), purpose="garment")
    assert result.extension == "jpg"


def test_cmyk_and_16_bit_grey_become_rgb():
    cmyk = io.BytesIO()
    Image.new("CMYK", (400, 400), (0, 255, 255, 0)).save(cmyk, format="JPEG")
    red = reopen(normalise_image(upload(cmyk.getvalue()))).getpixel((5, 5))
    assert red[0] > 200 and red[1] < 60

    grey = io.BytesIO()
    Image.new("I;16", (400, 400), 32768).save(grey, format="PNG")
    value = reopen(normalise_image(upload(grey.getvalue(), "g.png"))).getpixel((5, 5))
    assert 110 < value[0] < 150  # mid grey, not clipped to white


def test_the_same_photo_gives_the_same_digest():
    data = noisy_photo_bytes((900, 1200))
    assert normalise_image(upload(data)).digest == normalise_image(io.BytesIO(data)).digest
    other = noisy_photo_bytes((900, 1200), seed=1)
    assert normalise_image(upload(other)).digest != normalise_image(upload(data)).digest


def test_accepts_a_plain_binary_file_object():
    assert normalise_image(io.BytesIO(photo_bytes())).width == 600


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (TEXT, "not_an_image"),
        (SVG, "not_an_image"),
        (HTML, "not_an_image"),
        (b"", "empty_file"),
        (truncated_jpeg(), "truncated_image"),
        (png_bomb(), "too_many_pixels"),
        (animated_gif(), "animated"),
        (animated_png(), "animated"),
        (photo_bytes((1, 1)), "too_small"),
        (photo_bytes((800, 200)), "too_small"),
        (photo_bytes((400, 400), image_format="GIF"), "unsupported_type"),
        (photo_bytes((400, 400), image_format="BMP"), "unsupported_type"),
    ],
    ids=[
        "text",
        "svg",
        "html",
        "empty",
        "truncated",
        "bomb",
        "animated-gif",
        "animated-png",
        "1x1",
        "narrow",
        "gif",
        "bmp",
    ],
)
def test_refusals_have_a_stable_code_and_a_message(data, code):
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(data, "photo.jpg"))
    assert caught.value.code == code
    message = caught.value.messages[0]
    assert message.endswith(".") and "%(" not in message


def test_the_pixel_cap_is_checked_on_the_header_before_decoding(tryon, monkeypatch):
    tryon(MAX_IMAGE_PIXELS=1_000_000)
    data = photo_bytes((2000, 1000), image_format="PNG")
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(data))
    assert caught.value.code == "too_many_pixels"
    assert "over 1 megapixels" in caught.value.messages[0]


def test_too_small_says_the_minimum(tryon):
    tryon(MIN_IMAGE_SIDE=300)
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(photo_bytes((299, 900))))
    assert caught.value.code == "too_small"
    assert "299 x 900" in caught.value.messages[0]
    assert "300 pixels" in caught.value.messages[0]


class Unreadable(io.BytesIO):
    """An upload whose recorded size is over the cap: it must not be read at all."""

    size = 21 * 1024 * 1024

    def read(self, *args):
        raise AssertionError("read an upload over the byte cap")


def test_an_upload_over_the_byte_cap_is_refused_from_its_size_unread():
    with pytest.raises(ImageRejected) as caught:
        normalise_image(Unreadable(b"x"))
    assert caught.value.code == "too_large_upload"
    assert "20 MB" in caught.value.messages[0]


class Stream:
    """A non-seekable stream that records how much was read from it."""

    def __init__(self, data):
        self.data, self.read_bytes = io.BytesIO(data), 0

    def seekable(self):
        return False

    def read(self, size=-1):
        chunk = self.data.read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_a_stream_of_unknown_size_is_read_only_to_the_cap(tryon):
    tryon(MAX_UPLOAD_BYTES=100_000)
    stream = Stream(b"\xff" * 5_000_000)
    with pytest.raises(ImageRejected) as caught:
        normalise_image(stream)
    assert caught.value.code == "too_large_upload"
    assert stream.read_bytes == 100_001

    assert normalise_image(Stream(photo_bytes())).width == 600


def test_unknown_purpose_is_a_programming_error():
    with pytest.raises(ValueError, match="purpose"):
        normalise_image(upload(photo_bytes()), purpose="avatar")


def test_a_refusal_survives_copying_and_pickling():
    import copy
    import pickle

    error = ImageRejected("too_small", width=1, height=1, minimum=256)
    for clone in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert isinstance(clone, ImageRejected)
        assert clone.code == "too_small"
        assert clone.messages == error.messages


def test_a_refusal_shows_in_a_django_form():
    from django import forms

    class PhotoForm(forms.Form):
        photo = forms.FileField()

        def clean_photo(self):
            return normalise_image(self.cleaned_data["photo"])

    form = PhotoForm(files={"photo": upload(TEXT, "notes.jpg")})
    assert not form.is_valid()
    assert form.errors["photo"] == [images.MESSAGES["not_an_image"]]
    assert form.errors.as_data()["photo"][0].code == "not_an_image"


# Memory: bounded before decoding, and large decodes take turns ---------------


def test_the_callers_file_stays_open_and_unchanged():
    """The decoded pixels are freed once resized; the upload itself is the caller's."""
    photo = upload(photo_bytes((3000, 1500), image_format="PNG"), "big.png")
    assert normalise_image(photo).width == 2048
    assert not photo.closed
    photo.seek(0)
    assert Image.open(photo).size == (3000, 1500)


def test_a_16_bit_grey_png_is_decoded_straight_to_8_bits(monkeypatch):
    asked = []
    original = Image.core.new

    def spy(mode, size):
        asked.append((mode, size))
        return original(mode, size)

    monkeypatch.setattr(Image.core, "new", spy)
    grey = io.BytesIO()
    Image.new("I;16", (400, 300), 0x8A00).save(grey, format="PNG")
    out = reopen(normalise_image(upload(grey.getvalue(), "g.png")))
    # The decoder's buffer is 8-bit grey, never the 16-bit picture.
    assert ("L", (400, 300)) in asked
    assert not [mode for mode, _size in asked if mode.startswith("I")]
    assert out.getpixel((5, 5)) == (0x8A, 0x8A, 0x8A)


def test_over_the_memory_bound_is_refused_before_decoding(tryon, monkeypatch):
    data = photo_bytes((2000, 1000), image_format="PNG")  # 8 MB of RGB pixels
    tryon(INTAKE_MAX_DECODED_BYTES=8 * 1024 * 1024)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(data, "big.png"))
    assert caught.value.code == "too_large_to_decode"
    assert "2000 x 1000 pixels" in caught.value.messages[0]
    monkeypatch.undo()
    tryon(INTAKE_MAX_DECODED_BYTES=images.intake_bytes("RGB", "RGB", (2000, 1000), (2000, 1000)))
    assert normalise_image(upload(data, "big.png")).width == 2000


def test_the_bound_counts_bytes_per_pixel_not_only_pixels(tryon):
    """The same pixels cost four times more decoded in RGB than in grey."""
    size, target = (4000, 2000), (2048, 1024)
    grey = io.BytesIO()
    Image.new("L", size, 90).save(grey, format="PNG")
    tryon(INTAKE_MAX_DECODED_BYTES=images.intake_bytes("L", "L", size, target))
    assert normalise_image(upload(grey.getvalue(), "grey.png")).width == 2048
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(photo_bytes(size, image_format="PNG"), "colour.png"))
    assert caught.value.code == "too_large_to_decode"


def test_a_progressive_jpeg_counts_its_coefficient_buffer(tryon):
    """libjpeg keeps every coefficient of a progressive JPEG, whatever the output scale."""
    baseline = noisy_photo_bytes((4000, 3000), quality=70)
    progressive = noisy_photo_bytes((4000, 3000), quality=70, progressive=True)
    # Between the two: 12 MB of half-scale pixels, 36 MB more of 4:2:0 coefficients.
    tryon(INTAKE_MAX_DECODED_BYTES=40 * 1024 * 1024)
    assert normalise_image(upload(baseline)).width == 2000
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(progressive))
    assert caught.value.code == "too_large_to_decode"
    assert "4000 x 3000 pixels" in caught.value.messages[0]


def test_the_first_scan_of_a_jpeg_is_read_from_its_markers():
    assert images.first_scan_components(io.BytesIO(photo_bytes())) == 3
    grey = io.BytesIO()
    Image.new("L", (300, 300), 90).save(grey, format="JPEG")
    assert images.first_scan_components(io.BytesIO(grey.getvalue())) == 1
    # A scan of one component of three: libjpeg buffers the whole image's coefficients.
    frame = b"\xff\xc0\x00\x11\x08\x01\x00\x01\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    scan = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    assert images.first_scan_components(io.BytesIO(b"\xff\xd8" + frame + scan)) == 1
    assert images.first_scan_components(io.BytesIO(b"\xff\xd8\xff\xc0\x00")) is None


@pytest.mark.parametrize(
    ("mode", "save"),
    [("RGB", {"lossless": False}), ("RGB", {"lossless": True}), ("RGBA", {"exif": b"Exif"})],
    ids=["lossy", "lossless", "extended"],
)
def test_a_webp_canvas_size_is_read_from_its_header(mode, save):
    data = photo_bytes((700, 500), (10, 20, 30, 40)[: len(mode)], image_format="WEBP", **save)
    assert images.webp_canvas_size(data[:30]) == (700, 500)


def test_a_webp_over_the_caps_is_refused_before_pillow_opens_it(monkeypatch):
    """Pillow's WebP decoder allocates its canvas when the file is opened."""
    data = bytearray(photo_bytes((700, 500), image_format="WEBP", lossless=True))
    bits = (7000 - 1) | ((7000 - 1) << 14)  # a lossless header claiming 7000 x 7000
    data[21:25] = (bits | (int.from_bytes(data[21:25], "little") & ~0xFFFFFFF)).to_bytes(
        4, "little"
    )
    assert images.webp_canvas_size(bytes(data[:30])) == (7000, 7000)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("opened"))
    with pytest.raises(ImageRejected) as caught:
        normalise_image(upload(bytes(data), "big.webp"))
    assert caught.value.code == "too_large_to_decode"


def large_photo():
    """A PNG whose intake costs more than a photo at the intake size: it takes a slot."""
    data = photo_bytes((3000, 2000), image_format="PNG")
    assert images.intake_bytes("RGB", "RGB", (3000, 2000), (2048, 1365)) > (
        images.large_decode_bytes()
    )
    return data


@pytest.fixture
def one_slot(tryon, monkeypatch):
    tryon(INTAKE_MAX_PARALLEL_DECODES=1)
    monkeypatch.setattr(images, "DECODE_WAIT_SECONDS", 0.01)
    return images.DECODE_SLOTS.semaphore()


def test_a_large_decode_finding_no_slot_is_refused_and_a_small_one_goes_ahead(one_slot):
    large = large_photo()
    with images.DECODE_SLOTS.hold(0):  # taken by another request
        with pytest.raises(images.IntakeBusy) as caught:
            normalise_image(upload(large, "big.png"))
        # The size the button sends never waits.
        assert normalise_image(upload(noisy_photo_bytes((2048, 1536)))).width == 2048
    assert caught.value.code == "intake_busy"
    assert caught.value.retry_after == images.BUSY_RETRY_AFTER
    assert isinstance(caught.value, ImageRejected)  # callers that catch refusals catch it
    assert normalise_image(upload(large, "big.png")).width == 2048
    assert one_slot.acquire(blocking=False)  # every slot given back
    one_slot.release()


def test_large_decodes_run_at_most_the_setting_at_once(tryon, monkeypatch):
    import threading

    tryon(INTAKE_MAX_PARALLEL_DECODES=2)
    inside, most = [], [0]
    two_in, release = threading.Event(), threading.Event()
    lock = threading.Lock()
    original = ImageFile.ImageFile.load
    data, results = large_photo(), []
    seen = set()

    def held(image):
        # The decode (Pillow's load) runs inside the slot: each upload's first waits.
        if id(image) not in seen:
            seen.add(id(image))
            with lock:
                inside.append(id(image))
                most[0] = max(most[0], len(inside))
                if len(inside) == 2:
                    two_in.set()
            release.wait(10)
            with lock:
                inside.remove(id(image))
        return original(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", held)
    threads = [
        threading.Thread(target=lambda: results.append(normalise_image(upload(data, "b.png"))))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    assert two_in.wait(10)
    with lock:
        assert len(inside) == 2  # the third waits for a slot
    release.set()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2
    assert len(results) == 3


def test_the_api_answers_busy_with_503_and_retry_after(client, garment, one_slot):
    from django_tryon.models import TryOnJob
    from tests.support.api import assert_error, photo, post_job

    with images.DECODE_SLOTS.hold(0):
        response = post_job(client, garment, photo(large_photo(), name="me.png"))
    assert_error(response, 503, "intake_busy")
    assert response["Retry-After"] == str(images.BUSY_RETRY_AFTER)
    assert not TryOnJob.objects.exists()
    assert post_job(client, garment, photo(large_photo(), name="me.png")).status_code == 201


def test_a_busy_intake_shows_in_a_django_form(one_slot):
    from django import forms

    class PhotoForm(forms.Form):
        photo = forms.FileField()

        def clean_photo(self):
            return normalise_image(self.cleaned_data["photo"])

    with images.DECODE_SLOTS.hold(0):
        form = PhotoForm(files={"photo": upload(large_photo(), "big.png")})
        assert not form.is_valid()
    assert form.errors["photo"] == [str(images.BUSY_MESSAGE)]
    assert form.errors.as_data()["photo"][0].code == "intake_busy"


def test_a_busy_refusal_survives_copying_and_pickling():
    import copy
    import pickle

    error = images.IntakeBusy(5)
    for clone in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert isinstance(clone, images.IntakeBusy)
        assert (clone.code, clone.retry_after) == ("intake_busy", 5)
