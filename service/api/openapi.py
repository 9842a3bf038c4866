"""OpenAPI descriptions of the multipart upload bodies, which the handlers read from the form themselves."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

_PHOTO_FILES = Schema(
    type=OpenAPIType.ARRAY,
    items=Schema(type=OpenAPIType.STRING, format="binary"),  # type: ignore[arg-type]
    description="the photos (JPEG, PNG, GIF, BMP, TIFF, WebP or AVIF; recognised by content), 10 MB each",
)


def _multipart(properties: dict[str, Schema], required: list[str], description: str) -> RequestBody:
    return RequestBody(
        required=True,
        description=description,
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.OBJECT, properties=properties, required=required)  # type: ignore[arg-type]
            )
        },
    )


@dataclass
class RecognizeOperation(Operation):
    """``POST /api/batch-photos/recognize``: ``photos[]`` and an optional ``threshold``."""

    def __post_init__(self) -> None:
        self.request_body = _multipart(
            {
                "photos[]": _PHOTO_FILES,
                "threshold": Schema(
                    type=OpenAPIType.NUMBER,
                    minimum=0,
                    maximum=100,
                    description="confidence (0-100) a best match needs to count as recognised; default 70",
                    examples=[70],
                ),
            },
            ["photos[]"],
            "Up to 100 photos. Unusable files are listed under `errors` and do not fail the batch. Example: "
            "`curl -H 'Authorization: TOKEN' -F 'photos[]=@a.jpg' -F 'photos[]=@b.jpg' .../recognize`",
        )


@dataclass
class EnrollOperation(Operation):
    """``POST /api/identities``: ``name`` and ``photos[]``."""

    def __post_init__(self) -> None:
        self.request_body = _multipart(
            {
                "name": Schema(type=OpenAPIType.STRING, max_length=255, examples=["Jane Smith"]),
                "photos[]": _PHOTO_FILES,
            },
            ["name", "photos[]"],
            "A new person from photos holding their face; with several faces the largest is used.",
        )


@dataclass
class AddPhotosOperation(Operation):
    """``POST /api/identities/{id}/photos``: ``photos[]``."""

    def __post_init__(self) -> None:
        self.request_body = _multipart(
            {"photos[]": _PHOTO_FILES}, ["photos[]"], "More photos of an enrolled person; duplicates are refused."
        )
