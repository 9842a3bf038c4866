"""OpenAPI descriptions of the multipart upload bodies, which the handlers read from the form themselves."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

_PHOTO_FILES = Schema(
    type=OpenAPIType.ARRAY,
    items=Schema(type=OpenAPIType.STRING, format="binary"),  # type: ignore[arg-type]
    description="the photos (JPEG, PNG, GIF, BMP, TIFF, WebP or AVIF; recognised by content), 10 MB each",
)


_FORCE = Schema(
    type=OpenAPIType.BOOLEAN,
    description="enroll even when a face looks like someone else (or unlike the person); default false",
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
                "force": _FORCE,
                "face": Schema(
                    type=OpenAPIType.STRING,
                    description="with one photo of several faces: which is the person — a face number (0 = the "
                    "largest, as the refusal lists them) or a box `x1,y1,x2,y2` around it",
                    examples=["1", "120,40,260,210"],
                ),
            },
            ["name", "photos[]"],
            "A new person from photos holding their face. In each photo the face consistent across the photos is "
            "used; one photo of several faces needs `face`. Refused (409) when the name exists in any case or "
            "spacing, or the face looks like someone enrolled (unless `force`); unfit faces (small, unclear, "
            "blurred, turned away) are refused with the reason.",
        )


@dataclass
class AddPhotosOperation(Operation):
    """``POST /api/identities/{id}/photos``: ``photos[]``."""

    def __post_init__(self) -> None:
        self.request_body = _multipart(
            {"photos[]": _PHOTO_FILES, "force": _FORCE},
            ["photos[]"],
            "More photos of an enrolled person: in each, the face most like their enrolled faces. A photo where no "
            "face looks like them is refused (unless `force`); so are duplicates and unfit faces.",
        )
