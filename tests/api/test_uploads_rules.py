"""Upload limits, enforced while the multipart body streams in: files kept and counted, text fields capped and
checked, the process-wide spool budget, file names, and a 4xx that says why for every malformed body.

``receive_form`` reads a stand-in request (a content type and a body streamed in small chunks), so each rule is
checked without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from litestar.exceptions import ClientException, HTTPException, ValidationException

from service.api.uploads import (
    SPOOL_RETRY_AFTER,
    NoPhotosError,
    ReceivedForm,
    SpoolBudget,
    UploadLimits,
    receive_form,
)

BOUNDARY = "b0undary"
LIMITS = UploadLimits(max_files=3, max_file_bytes=100, max_field_bytes=64)


class StandInRequest:
    """What receive_form reads of a request: its content type and its body, in chunks."""

    def __init__(self, body: bytes, content_type: str = "multipart/form-data", boundary: str | None = BOUNDARY) -> None:
        self.body = body
        self.options = {"boundary": boundary} if boundary is not None else {}
        self.kind = content_type

    @property
    def content_type(self) -> tuple[str, dict[str, str]]:
        return self.kind, self.options

    async def stream(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 7):
            yield self.body[start : start + 7]


def part(name: str, content: bytes, filename: str | None = None, disposition_extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    disposition += disposition_extra
    content_type = "Content-Type: application/octet-stream\r\n" if filename is not None else ""
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{content_type}\r\n".encode() + content + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def receive(
    data: bytes, limits: UploadLimits = LIMITS, budget: SpoolBudget | None = None, **request: str | None
) -> ReceivedForm:
    return asyncio.run(receive_form(StandInRequest(data, **request), limits, budget or SpoolBudget(10_000)))  # type: ignore[arg-type]


# ----- what is kept -------------------------------------------------------------------------------------------
def test_files_in_photos_fields_are_kept_in_order_with_their_names_and_bytes() -> None:
    form = receive(
        body(part("photos[]", b"one", "a.jpg"), part("photos", b"two!", "b.png"), part("photos[]", b"", "c"))
    )
    assert [(f.filename, f.read(), f.size()) for f in form.files] == [
        ("a.jpg", b"one", 3),
        ("b.png", b"two!", 4),
        ("c", b"", 0),
    ]
    assert form.photos_sent == 3
    form.close()


def test_text_fields_are_kept_first_value_first_and_files_in_other_fields_are_dropped() -> None:
    form = receive(
        body(
            part("threshold", b"80"),
            part("threshold", b"90"),
            part("avatar", b"ignored", "me.jpg"),
            part("name", "Zoë".encode()),
            part("photos[]", b"x", "a.jpg"),
        )
    )
    assert form.fields == {"threshold": "80", "name": "Zoë"}
    assert [f.filename for f in form.files] == ["a.jpg"]
    assert form.photos_sent == 1
    form.close()


def test_text_sent_in_the_photos_field_counts_as_sent_but_is_no_photo() -> None:
    form = receive(body(part("photos[]", b"not a file"), part("photos", b"nor this"), part("photos[]", b"x", "a.jpg")))
    assert (len(form.files), form.text_in_photo_fields, form.photos_sent) == (1, 2, 3)
    assert "photos[]" not in form.fields
    form.close()


def test_a_browser_s_empty_no_file_chosen_part_is_not_an_upload() -> None:
    form = receive(body(part("photos[]", b"", ""), part("photos[]", b"x", "a.jpg")))
    assert [f.filename for f in form.files] == ["a.jpg"]
    assert form.photos_sent == 1
    form.close()


def test_an_empty_file_with_a_name_is_an_upload() -> None:
    form = receive(body(part("photos[]", b"", "empty.jpg")))
    assert [f.filename for f in form.files] == ["empty.jpg"]
    form.close()


def test_files_beyond_the_per_request_limit_are_counted_but_not_kept() -> None:
    form = receive(body(*(part("photos[]", b"abc", f"{i}.jpg") for i in range(5))))
    assert [f.filename for f in form.files] == ["0.jpg", "1.jpg", "2.jpg"]
    assert (form.files_over_limit, form.photos_sent) == (2, 5)
    assert form.budget.used == 9
    form.close()


def test_a_file_over_the_size_limit_has_its_exact_size_but_holds_no_more_than_the_limit() -> None:
    budget = SpoolBudget(10_000)
    form = receive(body(part("photos[]", b"x" * 250, "big.jpg"), part("photos[]", b"y" * 100, "ok.jpg")), budget=budget)
    big, ok = form.files
    assert (big.size(), ok.size()) == (250, 100)
    assert len(big.read()) <= 100
    assert ok.read() == b"y" * 100
    assert budget.used <= 200
    form.close()
    assert budget.used == 0


def test_rfc_5987_file_names_are_decoded() -> None:
    form = receive(
        body(
            part("photos[]", b"x", "fallback.jpg", "; filename*=UTF-8''%C3%A9t%C3%A9.jpg"),
            part("photos[]", b"y", "fallback.jpg", "; filename*=''caf%C3%A9.jpg"),
            part("photos[]", b"z", "fallback.jpg", "; filename*=iso-8859-1'fr'%E9t%E9.jpg"),
            part("photos[]", b"w", "fallback.jpg", "; FILENAME* = \"utf-8''x.jpg\""),
        ),
        limits=UploadLimits(max_files=4, max_file_bytes=100, max_field_bytes=64),
    )
    assert [f.filename for f in form.files] == ["été.jpg", "café.jpg", "été.jpg", "x.jpg"]
    form.close()


@pytest.mark.parametrize(
    ("extended", "message"),
    [
        ("UTF-8''%FF.jpg", "A file name (filename*) is not valid UTF-8 text; send UTF-8 file names"),
        ("no-such-charset''x.jpg", "A file name (filename*) is not valid no-such-charset text; send UTF-8 file names"),
        ("''%FF.jpg", "A file name (filename*) is not valid UTF-8 text; send UTF-8 file names"),
    ],
)
def test_an_undecodable_rfc_5987_file_name_is_400_saying_so(extended: str, message: str) -> None:
    with pytest.raises(ValidationException) as refused:
        receive(body(part("photos[]", b"x", "fallback.jpg", f"; filename*={extended}")))
    assert refused.value.detail == message


# ----- text fields --------------------------------------------------------------------------------------------
def test_a_text_field_of_exactly_the_limit_is_accepted() -> None:
    form = receive(body(part("name", b"n" * 64)))
    assert form.fields == {"name": "n" * 64}


def test_a_text_field_over_the_limit_is_413_naming_the_field_and_the_limit() -> None:
    limits = UploadLimits(max_files=3, max_file_bytes=100, max_field_bytes=4096)
    with pytest.raises(HTTPException) as refused:
        receive(body(part("name", b"n" * 4097)), limits=limits)
    assert refused.value.status_code == 413
    assert refused.value.detail == "Form field 'name' is too large: the limit is 4,096 bytes"


def test_a_text_field_that_is_not_utf8_is_400() -> None:
    with pytest.raises(ValidationException) as refused:
        receive(body(part("threshold", b"\xff\xfe")))
    assert refused.value.detail == "Form field 'threshold' is not valid UTF-8 text"


def test_a_long_field_name_is_cut_to_40_characters_in_the_error() -> None:
    with pytest.raises(ValidationException) as refused:
        receive(body(part("f" * 100, b"\xff")))
    assert refused.value.detail == f"Form field {'f' * 40!r} is not valid UTF-8 text"


def test_text_in_the_photos_field_is_capped_like_any_text() -> None:
    with pytest.raises(HTTPException) as refused:
        receive(body(part("photos[]", b"t" * 65)))
    assert refused.value.status_code == 413


# ----- the spool budget ---------------------------------------------------------------------------------------
def test_the_spool_budget_takes_bytes_up_to_its_capacity_and_gets_them_back() -> None:
    budget = SpoolBudget(10)
    assert budget.reserve(6)
    assert not budget.reserve(5)
    assert budget.reserve(4)
    assert budget.used == 10
    assert not budget.reserve(1)
    budget.release(7)
    assert budget.used == 3
    budget.release(50)
    assert budget.used == 0
    assert budget.capacity == 10


def test_uploads_beyond_the_spool_budget_are_503_with_retry_after_and_give_their_space_back() -> None:
    budget = SpoolBudget(150)
    budget.reserve(20)  # another request holds some
    with pytest.raises(HTTPException) as refused:
        receive(body(part("photos[]", b"a" * 100, "a.jpg"), part("photos[]", b"b" * 100, "b.jpg")), budget=budget)
    assert refused.value.status_code == 503
    assert refused.value.detail == "The server is receiving too many uploads at once; retry later"
    assert refused.value.headers == {"Retry-After": str(SPOOL_RETRY_AFTER)}
    assert SPOOL_RETRY_AFTER == 10
    assert budget.used == 20


def test_closing_a_form_gives_its_space_back() -> None:
    budget = SpoolBudget(1000)
    form = receive(body(part("photos[]", b"a" * 50, "a.jpg"), part("photos[]", b"b" * 30, "b.jpg")), budget=budget)
    assert (budget.used, form.reserved) == (80, 80)
    form.close()
    assert (budget.used, form.reserved) == (0, 0)
    assert all(f.file.closed for f in form.files)


# ----- malformed requests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_that_is_not_multipart_has_no_photos(content_type: str) -> None:
    with pytest.raises(NoPhotosError) as refused:
        receive(b"{}", content_type=content_type)
    assert refused.value.status_code == 400
    assert refused.value.detail == (
        "No photos uploaded: send the photos as files in the photos[] field of a multipart/form-data body"
    )


@pytest.mark.parametrize("boundary", [None, ""])
def test_a_multipart_content_type_without_a_boundary_is_400(boundary: str | None) -> None:
    with pytest.raises(ValidationException) as refused:
        receive(body(part("photos[]", b"x", "a.jpg")), boundary=boundary)
    assert refused.value.detail == "Malformed multipart body: the Content-Type has no boundary"


def test_more_parts_than_files_plus_other_fields_is_413_saying_how_many_may_be_sent() -> None:
    limits = UploadLimits(max_files=2, max_file_bytes=100, max_field_bytes=64, max_other_parts=1)
    assert limits.max_parts == 3
    with pytest.raises(HTTPException) as refused:
        receive(body(*(part(f"field{i}", b"v") for i in range(4))), limits=limits)
    assert refused.value.status_code == 413
    assert refused.value.detail == "Too many parts in the form: at most 3 (2 photos[] files and 1 other fields)"


def test_the_other_fields_beside_the_photos_are_16_by_default() -> None:
    assert UploadLimits(max_files=100, max_file_bytes=1, max_field_bytes=64).max_parts == 116
    form = receive(body(*(part(f"field{i}", b"v") for i in range(3 + 16))))
    assert len(form.fields) == 19


def test_a_truncated_body_is_400_malformed() -> None:
    with pytest.raises(ClientException) as refused:
        receive(body(part("photos[]", b"x", "a.jpg"))[:-20])
    assert refused.value.status_code == 400
    assert refused.value.detail.startswith("Malformed multipart body: ")


def test_a_part_without_content_disposition_is_400_malformed() -> None:
    data = f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode()
    with pytest.raises(ClientException) as refused:
        receive(data)
    assert refused.value.detail == "Malformed multipart body: Missing Content-Disposition segment header"


def test_a_part_header_longer_than_8_kib_is_400_malformed() -> None:
    data = part("photos[]", b"x", "a" * 9000 + ".jpg") + f"--{BOUNDARY}--\r\n".encode()
    with pytest.raises(ClientException) as refused:
        receive(data)
    assert refused.value.status_code == 400
    assert refused.value.detail.startswith("Malformed multipart body: ")


def test_a_part_with_more_than_16_headers_is_400_malformed() -> None:
    headers = "".join(f"X-Extra-{i}: v\r\n" for i in range(16))
    data = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos[]"; filename="a.jpg"\r\n{headers}\r\nx\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    with pytest.raises(ClientException) as refused:
        receive(data)
    assert refused.value.status_code == 400
    assert refused.value.detail.startswith("Malformed multipart body: ")


def test_a_refused_body_leaves_no_space_taken() -> None:
    budget = SpoolBudget(10_000)
    with pytest.raises(HTTPException):
        receive(body(part("photos[]", b"a" * 50, "a.jpg"), part("name", b"n" * 65)), budget=budget)
    assert budget.used == 0


def test_an_unnamed_field_is_named_as_empty_in_its_error() -> None:
    with pytest.raises(ValidationException) as refused:
        receive(body(part("", b"\xff")))
    assert refused.value.detail == "Form field '' is not valid UTF-8 text"


def test_an_rfc_5987_file_name_is_kept_whole_whatever_its_characters() -> None:
    form = receive(
        body(
            part("photos[]", b"x", "fallback.jpg", "; filename*=UTF-8''O'Brien.jpg"),
            part("photos[]", b"x", "fallback.jpg", "; filename*=UTF-8''XBOX"),
        )
    )
    assert [f.filename for f in form.files] == ["O'Brien.jpg", "XBOX"]
    form.close()


def test_part_headers_up_to_8_kib_and_16_headers_are_accepted() -> None:
    name = "n" * 7000 + ".jpg"
    headers = "".join(f"X-Extra-{i}: v\r\n" for i in range(14))
    data = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos[]"; filename="{name}"\r\n'
        f"Content-Type: image/jpeg\r\n{headers}\r\nx\r\n--{BOUNDARY}--\r\n"
    ).encode()
    form = receive(data)
    assert [f.filename for f in form.files] == [name]
    form.close()


def test_a_part_header_that_is_not_utf8_is_400_saying_so() -> None:
    data = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos[]"; filename="a.jpg"\r\n'.encode()
        + b"X-Bad: \xff\xfe\r\n\r\nx\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    with pytest.raises(ClientException) as refused:
        receive(data)
    assert refused.value.detail == "Malformed multipart body: Segment header failed to decode"
