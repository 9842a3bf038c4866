"""Multipart uploads read as a stream, with every limit enforced while the bytes arrive.

Litestar's form parser holds text fields in memory whole before a handler runs and fails on text that is
not UTF-8; here a text field is refused as soon as it passes a few kilobytes, files are spooled against a
process-wide budget, and every malformed part is a 400 that says why.
"""

from __future__ import annotations

import re
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import multipart
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_503_SERVICE_UNAVAILABLE

PHOTO_FIELDS = ("photos[]", "photos")
MEMORY_PER_FILE = 1024 * 1024  # a photo up to this size stays in memory; larger ones spill to a temporary file
MAX_PART_HEADER_BYTES = 8192
EXTENDED_FILENAME = re.compile(r"""filename\*\s*=\s*([^;]+)""", re.IGNORECASE)
SPOOL_RETRY_AFTER = 10


class NoPhotosError(ValidationException):
    """The request holds no photo files (the spec's "400 No photos uploaded")."""


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What one upload request may hold."""

    max_files: int
    max_file_bytes: int
    max_field_bytes: int
    max_other_parts: int = 16  # text fields and ignored parts beside the photos

    @property
    def max_parts(self) -> int:
        """All parts of the body."""
        return self.max_files + self.max_other_parts


class SpoolBudget:
    """Bytes of uploads being received or held, across all requests of the process (memory and temp disk)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._used

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes if they fit."""
        with self._lock:
            if self._used + size > self.capacity:
                return False
            self._used += size
            return True

    def release(self, size: int) -> None:
        """Give back bytes taken with :meth:`reserve`."""
        with self._lock:
            self._used = max(0, self._used - size)


class ReceivedFile:
    """One uploaded file, spooled; a :class:`~service.recognition.photos.PhotoSource`.

    A file larger than the limit keeps counting its bytes but stores none of them, so its size is exact
    and the error can say by how much it is over.
    """

    def __init__(self, filename: str, max_bytes: int) -> None:
        self.filename = filename
        self.received = 0
        self.max_bytes = max_bytes
        self.file: Any = tempfile.SpooledTemporaryFile(max_size=MEMORY_PER_FILE)  # noqa: SIM115 (closed by the form)

    def size(self) -> int:
        """Bytes received."""
        return self.received

    def read(self) -> bytes:
        """The content (only complete when within the limit; callers check :meth:`size` first)."""
        self.file.seek(0)
        data: bytes = self.file.read()
        return data


@dataclass(slots=True)
class ReceivedForm:
    """The photos and text fields of a multipart request; close it to free the spooled files."""

    budget: SpoolBudget
    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    text_in_photo_fields: int = 0  # photos[] values that were text, not files
    files_over_limit: int = 0  # photos[] files beyond the per-request limit, counted but not kept
    reserved: int = 0

    @property
    def photos_sent(self) -> int:
        """Values sent in photos[]: files kept, files over the limit, and text."""
        return len(self.files) + self.files_over_limit + self.text_in_photo_fields

    def close(self) -> None:
        """Delete the spooled files and give their space back."""
        for received in self.files:
            received.file.close()
        self.budget.release(self.reserved)
        self.reserved = 0


def _field_name(name: str | None) -> str:
    return (name or "")[:40]


def _extended_filename(disposition: str) -> str | None:
    """The RFC 5987 ``filename*=charset'lang'value`` form, decoded; 400 when it cannot be."""
    found = EXTENDED_FILENAME.search(disposition)
    if found is None:
        return None
    charset, _, rest = found.group(1).strip().strip('"').partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return urllib.parse.unquote_to_bytes(encoded).decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        raise ValidationException(
            f"A file name (filename*) is not valid {charset or 'UTF-8'} text; send UTF-8 file names"
        ) from None


class _Receiver:
    """Turns parser events into a :class:`ReceivedForm`, enforcing the limits part by part."""

    def __init__(self, limits: UploadLimits, form: ReceivedForm) -> None:
        self.limits = limits
        self.form = form
        self.current: ReceivedFile | None = None
        self.text: bytearray | None = None
        self.name = ""

    def segment(self, segment: multipart.MultipartSegment) -> None:
        self.name = segment.name or ""
        filename = _extended_filename(segment.header("Content-Disposition") or "")
        if filename is None:
            filename = segment.filename
        self.current, self.text = None, None
        if filename is None:
            self.text = bytearray()
        elif self.name not in PHOTO_FIELDS:
            return  # a file in a field we do not read: with no current part, its bytes are dropped
        else:
            if len(self.form.files) >= self.limits.max_files:
                # Counted (the part limit bounds how many) so the error can say how many were sent; not kept.
                self.form.files_over_limit += 1
                return
            self.current = ReceivedFile(filename, self.limits.max_file_bytes)
            self.form.files.append(self.current)

    def data(self, chunk: bytes) -> None:
        if self.text is not None:
            if len(self.text) + len(chunk) > self.limits.max_field_bytes:
                raise HTTPException(
                    status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                    detail=f"Form field {_field_name(self.name)!r} is too large: "
                    f"the limit is {self.limits.max_field_bytes:,} bytes",
                )
            self.text.extend(chunk)
        elif self.current is not None:
            received = self.current
            received.received += len(chunk)
            if received.received > received.max_bytes:
                return  # over the limit: counted, not kept
            if not self.form.budget.reserve(len(chunk)):
                raise HTTPException(
                    status_code=HTTP_503_SERVICE_UNAVAILABLE,
                    detail="The server is receiving too many uploads at once; retry later",
                    headers={"Retry-After": str(SPOOL_RETRY_AFTER)},
                )
            self.form.reserved += len(chunk)
            received.file.write(chunk)

    def end(self) -> None:
        if self.text is not None:
            self._finish_text(bytes(self.text))
        elif self.current is not None and self.current.received == 0 and self.current.filename == "":
            # A browser's form sends an empty nameless part for "no file chosen": not an upload.
            self.form.files.pop()
        self.current, self.text = None, None

    def _finish_text(self, raw: bytes) -> None:
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationException(f"Form field {_field_name(self.name)!r} is not valid UTF-8 text") from None
        if self.name in PHOTO_FIELDS:
            self.form.text_in_photo_fields += 1
        else:
            self.form.fields.setdefault(self.name, value)


async def receive_form(request: Request[Any, Any, Any], limits: UploadLimits, budget: SpoolBudget) -> ReceivedForm:
    """Read a multipart body as it streams in; raises a 4xx (or 503 when upload space is short) saying why.

    A body that is not multipart raises :class:`NoPhotosError`: without a multipart body there are no photos.
    """
    content_type, options = request.content_type
    if content_type != RequestEncodingType.MULTI_PART:
        raise NoPhotosError(
            "No photos uploaded: send the photos as files in the photos[] field of a multipart/form-data body"
        )
    boundary = options.get("boundary")
    if not boundary:
        raise ValidationException("Malformed multipart body: the Content-Type has no boundary")
    form = ReceivedForm(budget=budget)
    receiver = _Receiver(limits, form)
    parser = multipart.PushMultipartParser(
        boundary, max_header_size=MAX_PART_HEADER_BYTES, max_header_count=16, max_segment_count=limits.max_parts
    )
    try:
        async for chunk in request.stream():
            _feed(parser, receiver, chunk, limits)
        _feed(parser, receiver, b"", limits)
    except BaseException:
        form.close()
        raise
    return form


def _feed(parser: multipart.PushMultipartParser, receiver: _Receiver, chunk: bytes, limits: UploadLimits) -> None:
    try:
        for event in parser.parse(chunk):
            if isinstance(event, multipart.MultipartSegment):
                receiver.segment(event)
            elif event is None:
                receiver.end()
            else:
                receiver.data(event)
    except multipart.ParserLimitReached as exc:
        if "segment count" in str(exc).lower():  # not "segment header length/count": those are malformed parts
            raise HTTPException(
                status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                detail=f"Too many parts in the form: at most {limits.max_parts} "
                f"({limits.max_files} photos[] files and {limits.max_other_parts} other fields)",
            ) from None
        raise ClientException(f"Malformed multipart body: {exc}") from None
    except multipart.MultipartError as exc:
        reason = exc.args[0] if exc.args else str(exc)
        raise ClientException(f"Malformed multipart body: {reason}") from None


async def receive_photos(
    request: Request[Any, Any, Any],
    limits: UploadLimits,
    budget: SpoolBudget,
    *,
    too_many: Callable[[int], str],
) -> ReceivedForm:
    """A multipart body holding 1 to ``limits.max_files`` photos in ``photos[]``, else a 400 saying why
    (``too_many(sent)`` words the over-the-limit case); the caller closes the form."""
    form = await receive_form(request, limits, budget)
    try:
        sent = form.photos_sent
        if not sent:
            raise NoPhotosError("No photos uploaded: send files in the photos[] form field")
        if sent > limits.max_files:
            raise ValidationException(too_many(sent))
        if not form.files:
            raise NoPhotosError("No photos uploaded: photos[] must hold files, not text")
    except BaseException:
        form.close()
        raise
    return form
