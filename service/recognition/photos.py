"""Photo sources (uploads, files, bytes) and reading them safely into decoded images."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from service.recognition.images import Admission, DecodedImage, ImageError, decode_image

MAX_FILENAME_LENGTH = 255


class PhotoSource(Protocol):
    """Anything that has a file name and bytes: an upload, a file on disk, bytes in memory."""

    @property
    def filename(self) -> str: ...

    def size(self) -> int:
        """Size in bytes, known without reading the content."""
        ...

    def read(self) -> bytes:
        """The whole content."""
        ...


@dataclass(frozen=True, slots=True)
class FilePhoto:
    """A photo on disk, read only when processed."""

    path: Path

    @property
    def filename(self) -> str:
        """The file's own name."""
        return self.path.name

    def size(self) -> int:
        """Size in bytes."""
        return self.path.stat().st_size

    def read(self) -> bytes:
        """The bytes."""
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class StreamPhoto:
    """A photo in an open binary file (e.g. a spooled upload), read from its start."""

    filename: str
    stream: BinaryIO

    def size(self) -> int:
        """Size in bytes, by seeking to the end."""
        self.stream.seek(0, 2)
        return self.stream.tell()

    def read(self) -> bytes:
        """The bytes."""
        self.stream.seek(0)
        return self.stream.read()


def clean_filename(name: str | None) -> str:
    """A display name: no path parts, no control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if base in ("", ".", ".."):
        base = "unnamed"
    if len(base) > MAX_FILENAME_LENGTH:
        _, dot, ext = base.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        base = base[: MAX_FILENAME_LENGTH - len(keep) - 2] + "…" + ("." + keep if keep else "")
    return base


def format_megabytes(size: int) -> str:
    """Bytes as a short megabyte figure."""
    return f"{size / (1024 * 1024):.1f} MB"


def too_large_message(size: int, limit: int) -> str:
    """Why a file is refused for its size, with figures that visibly differ even when the excess is tiny."""
    if format_megabytes(size) == format_megabytes(limit):
        return f"File is too large: {size:,} bytes; the limit is {limit:,} bytes ({format_megabytes(limit)})"
    return f"File is too large: {format_megabytes(size)}; the limit is {format_megabytes(limit)}"


def load_photo(
    source: PhotoSource,
    *,
    max_bytes: int,
    max_pixels: int,
    min_side: int,
    max_side: int | None = None,
    admit: Admission | None = None,
) -> tuple[DecodedImage, bytes]:
    """Check the size, read and decode one photo; raises :class:`ImageError` saying why it is unusable."""
    try:
        size = source.size()
        if size > max_bytes:
            raise ImageError(too_large_message(size, max_bytes))
        data = source.read()
    except OSError as exc:
        raise ImageError(f"File could not be read: {exc.strerror or exc}") from None
    image = decode_image(data, max_pixels=max_pixels, min_side=min_side, max_side=max_side, admit=admit)
    return image, data
