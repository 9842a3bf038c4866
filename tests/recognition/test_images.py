"""Photos are recognised by content; anything unusable is refused with a specific reason."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.recognition.images import ImageError, decode_image
from tests.conftest import KNN

OBAMA = KNN / "test" / "obama1.jpg"
LIMIT = 80_000_000


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(OBAMA).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF"])
def test_every_supported_format_decodes_to_bgr_pixels(photo: Image.Image, fmt: str) -> None:
    decoded = decode_image(encoded(photo, fmt), max_pixels=LIMIT)
    assert decoded.pixels.shape == (photo.height, photo.width, 3)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.format == fmt


def test_the_format_comes_from_the_content_not_the_name(photo: Image.Image) -> None:
    # A PNG whose bytes are handed over with no name at all still decodes as PNG.
    assert decode_image(encoded(photo, "PNG"), max_pixels=LIMIT).format == "PNG"


def test_channels_are_converted_from_rgb_to_bgr() -> None:
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    assert decode_image(encoded(red, "PNG"), max_pixels=LIMIT).pixels[0, 0].tolist() == [0, 0, 255]


def test_transparent_pixels_become_white() -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(encoded(clear, "PNG"), max_pixels=LIMIT).pixels[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode", ["L", "LA", "P", "CMYK", "I;16"])
def test_other_pixel_modes_become_three_channel_images(photo: Image.Image, mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    if mode == "I;16":  # a 16-bit greyscale PNG
        source = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    else:
        source = photo.convert(mode)
    decoded = decode_image(encoded(source, fmt), max_pixels=LIMIT)
    assert decoded.pixels.shape == (photo.height, photo.width, 3)
    assert 40 < decoded.pixels.mean() < 215  # not blown out or black: 16-bit data was scaled, not clipped


def test_animated_gifs_use_their_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((0, 255, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data, max_pixels=LIMIT).pixels[0, 0].tolist() == [0, 255, 0]


def test_exif_orientation_is_applied(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    decoded = decode_image(encoded(photo, "JPEG", exif=exif), max_pixels=LIMIT)
    assert decoded.pixels.shape[:2] == (photo.width, photo.height)
    assert (decoded.width, decoded.height) == (photo.height, photo.width)


def test_large_jpegs_are_decoded_reduced_but_report_original_geometry(photo: Image.Image) -> None:
    big = photo.resize((4000, 3000))
    decoded = decode_image(encoded(big, "JPEG"), max_pixels=LIMIT, min_side=640)
    assert decoded.pixels.shape[:2] == (750, 1000)
    assert decoded.scale == pytest.approx(4.0)
    assert (decoded.width, decoded.height) == (4000, 3000)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: the classic decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, I am text pretending to be a photo", "Unsupported or unrecognised image format"),
        (b"%PDF-1.7\n1 0 obj<<>>endobj", "PDF"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (png_header_only(9000, 9000), "too large: 9000x9000 pixels"),
        (png_header_only(40000, 40000), "too large.*decompression bomb"),
    ],
    ids=["empty", "text", "pdf", "svg", "heic", "bomb", "huge-bomb"],
)
def test_unusable_files_are_refused_with_a_specific_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data, max_pixels=LIMIT)


def test_a_truncated_jpeg_is_refused_as_corrupt() -> None:
    data = Path(OBAMA).read_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 3], max_pixels=LIMIT)


def test_images_over_the_pixel_limit_are_refused_before_decoding(photo: Image.Image) -> None:
    with pytest.raises(ImageError, match=r"the limit is 0\.1 MP"):
        decode_image(encoded(photo, "PNG"), max_pixels=100_000)


def test_a_file_that_cannot_be_read_is_refused_not_fatal(tmp_path: Path) -> None:
    from service.recognition.photos import FilePhoto, load_photo

    with pytest.raises(ImageError, match="File could not be read"):
        load_photo(FilePhoto(tmp_path / "gone.jpg"), max_bytes=10_000_000, max_pixels=LIMIT, min_side=640)
