"""The face model: SCRFD detection, 5-point alignment and batched ArcFace embeddings on onnxruntime."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD
from insightface.utils.face_align import arcface_dst
from PIL import Image

from service.recognition.images import DecodedImage, ImageError
from service.recognition.models import (
    CPU_PROVIDER,
    ExecutionProviderError,
    ModelPack,
    check_providers,
    cpu_model_source,
)

ALIGNED_SIZE = 112
EMBEDDING_DIM = 512
STRIDE = 32  # SCRFD's coarsest feature map: its input sides must be multiples of this
CROP_JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class FaceCandidate:
    """A detected face, ready to embed. Box and landmarks are in original-photo pixels."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    det_score: float
    landmarks: np.ndarray  # 5 x 2
    crop: np.ndarray  # 112 x 112 x 3 BGR, aligned
    aligned_input: bool = False  # the photo itself was an aligned face crop

    @property
    def area(self) -> float:
        """Box area in original pixels."""
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def _session(path: Path, threads: int, providers: Sequence[str]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle onnxruntime threads spin by default, taking the core the decode thread beside them needs (#14: decode +
    # detect 33.4 ms/photo spinning, 24.1 ms not); they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Silences the recogniser's benign "expected shape {1,512}" warning for batched runs.
    options.log_severity_level = 3
    # On the CPU, the recogniser's PRelu activations keep its convolutions out of their fastest layout.
    source = cpu_model_source(path) if providers[0] == CPU_PROVIDER else str(path)
    session = ort.InferenceSession(source, options, providers=list(providers))
    inactive = [name for name in providers if name not in session.get_providers()]
    if inactive:  # onnxruntime falls back to the CPU silently when, e.g., the CUDA libraries are missing
        raise ExecutionProviderError(
            f"onnxruntime could not start {', '.join(inactive)} for {path.name} (see its log above); "
            f"it would run on {', '.join(session.get_providers())}"
        )
    return session


def detector_input_size(width: int, height: int, det_size: int) -> tuple[int, int]:
    """The SCRFD input (width, height) for a photo: its long side scaled to ``det_size`` (rounded up to a multiple
    of 32), the short side in proportion, each padded up to a multiple of 32 (SCRFD's largest stride)."""
    side = -(-det_size // STRIDE) * STRIDE
    long, short = max(width, height), min(width, height)
    padded_short = max(STRIDE, -(-side * short // (STRIDE * long)) * STRIDE)  # integer ceiling: no float drift
    return (side, padded_short) if width >= height else (padded_short, side)


def align_face(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp a face to the 112x112 ArcFace template by a similarity transform on its 5 landmarks."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), arcface_dst, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks; fall back to least squares
        matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), arcface_dst, method=0)
    return cv2.warpAffine(pixels, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), borderValue=0.0)


def crop_jpeg(crop_bgr: np.ndarray, quality: int = CROP_JPEG_QUALITY) -> bytes:
    """An aligned face crop as a small JPEG (~3-4 KB at 112x112), for thumbnails and review."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop_bgr[:, :, ::-1])).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


class FaceModel:
    """One onnxruntime session per model for the whole process; thread-safe for concurrent calls.

    ``threads`` is the budget of one batch's pipeline: ``pipeline_workers`` photos are decoded and detected at
    once, each on its own thread with a ``detector_threads``-thread detector (default 1), then the recogniser
    takes all of them. One photo per thread beats one photo on every thread: detection does not scale
    linearly with threads, and a photo's decode (Pillow, one thread) overlaps another's detection (#14:
    21.7 -> 18.2 ms/photo on 2 cores).
    """

    def __init__(
        self,
        pack: ModelPack,
        *,
        threads: int,
        detector_threads: int | None = None,
        providers: Sequence[str] = (CPU_PROVIDER,),
        det_size: int = 640,
        det_threshold: float = 0.5,
        embed_batch_size: int = 32,
        min_image_side: int = 16,
        max_aspect_ratio: float = 20.0,
    ) -> None:
        self.name = pack.name
        self.providers = check_providers(providers)
        self.det_size = det_size
        self.min_image_side = min_image_side
        self.max_aspect_ratio = max_aspect_ratio
        self.det_threshold = det_threshold
        self.embed_batch_size = embed_batch_size
        self.detector_threads = max(1, min(detector_threads or 1, threads))
        self.pipeline_workers = max(1, threads // self.detector_threads)
        self.recognizer_threads = threads
        detector_session = _session(pack.detector, self.detector_threads, self.providers)
        # One session for every input shape: insightface would otherwise build (and warm) a session per new shape.
        # No prepare(): for a CPU context it would force the session back onto the CPU provider.
        self._detector = SCRFD(str(pack.detector), session=detector_session, static_shape_sessions=False)
        recognizer_session = _session(pack.recognizer, self.recognizer_threads, self.providers)
        self._recognizer = ArcFaceONNX(str(pack.recognizer), session=recognizer_session)
        if tuple(self._recognizer.input_size) != (ALIGNED_SIZE, ALIGNED_SIZE):
            raise ValueError(f"Recogniser {pack.recognizer.name} does not take 112x112 faces")

    @property
    def active_providers(self) -> list[str]:
        """The execution providers the models' sessions run on, preferred first."""
        sessions = (self._detector.session, self._recognizer.session)
        return list(dict.fromkeys(name for session in sessions for name in session.get_providers()))

    def warm_up(self) -> None:
        """Run both models once so the first real request does not pay for graph initialisation."""
        for width, height in ((4, 3), (3, 4)):  # a landscape and a portrait detector input
            size = self._detector_input(width * 160, height * 160)
            self._detector.detect(np.zeros((size[1], size[0], 3), dtype=np.uint8), input_size=size)
        self.embed([np.zeros((ALIGNED_SIZE, ALIGNED_SIZE, 3), dtype=np.uint8)])

    def _detector_input(self, width: int, height: int) -> tuple[int, int]:
        """The detector input for a photo: fitted to it on the CPU, where a 640 square spent a third of the shared
        photos' detection on padding (21.0 -> 14.5 CPU ms/photo); a fixed square on other providers, where padding
        is cheap and one shape spares a kernel search (cuDNN's) per new shape."""
        if self.providers[0] == CPU_PROVIDER:
            return detector_input_size(width, height, self.det_size)
        side = detector_input_size(1, 1, self.det_size)[0]
        return side, side

    def check_shape(self, image: DecodedImage) -> None:
        """Raise :class:`ImageError` for a photo too thin or too elongated for the detector to take."""
        self.check_dimensions(image.width, image.height)

    def check_dimensions(self, width: int, height: int) -> None:
        """:meth:`check_shape` from a photo's header, before its pixels are decoded."""
        short, long = sorted((width, height))
        if short < self.min_image_side:
            raise ImageError(
                f"Image is too small to search for faces: {width}x{height} pixels; "
                f"each side needs at least {self.min_image_side} pixels"
            )
        if long / short > self.max_aspect_ratio:
            raise ImageError(
                f"Image is too elongated to search for faces: {width}x{height} pixels "
                f"(aspect ratio {long / short:.0f}:1; the limit is {self.max_aspect_ratio:g}:1)"
            )

    def detect(self, image: DecodedImage) -> list[FaceCandidate]:
        """Detect and align every face of a photo, largest first; :class:`ImageError` if it cannot be searched."""
        candidates, _ = self.detect_largest(image, None)
        return candidates

    def detect_largest(self, image: DecodedImage, limit: int | None) -> tuple[list[FaceCandidate], int]:
        """The ``limit`` largest faces of a photo, aligned, and how many faces it holds in all."""
        self.check_shape(image)
        pixels = image.pixels
        size = self._detector_input(pixels.shape[1], pixels.shape[0])
        try:
            boxes, landmarks = self._detector.detect(pixels, input_size=size, det_thresh=self.det_threshold)
        except cv2.error as exc:  # an image OpenCV cannot resize; one photo's problem, not the batch's
            raise ImageError(f"The face detector could not process this image ({image.width}x{image.height})") from exc
        found = len(boxes) if landmarks is not None else 0
        areas = [max(0.0, float(b[2] - b[0])) * max(0.0, float(b[3] - b[1])) for b in boxes[:found]]
        # Only the faces that will be used are aligned: a crowd of tiny faces must not cost an alignment each.
        largest = sorted(range(found), key=lambda i: areas[i], reverse=True)[:limit]
        candidates = []
        for i in largest:
            row, points = boxes[i], landmarks[i]
            scaled_box = tuple(float(v) * image.scale for v in row[:4])
            candidates.append(
                FaceCandidate(
                    box=(scaled_box[0], scaled_box[1], scaled_box[2], scaled_box[3]),
                    det_score=float(row[4]),
                    landmarks=points * image.scale,
                    crop=align_face(pixels, points),
                )
            )
        if not found and pixels.shape[:2] == (ALIGNED_SIZE, ALIGNED_SIZE) and limit != 0:
            # Already an aligned face crop: nothing for the detector to find, but the recogniser's input.
            candidates.append(
                FaceCandidate(
                    box=(0.0, 0.0, float(image.width), float(image.height)),
                    det_score=0.0,
                    landmarks=arcface_dst.copy(),
                    crop=pixels,
                    aligned_input=True,
                )
            )
            found = 1
        return candidates, found

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings of aligned crops, run through the recogniser in batches."""
        if not crops:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        chunks = []
        for start in range(0, len(crops), self.embed_batch_size):
            chunk = list(crops[start : start + self.embed_batch_size])
            chunks.append(np.asarray(self._recognizer.get_feat(chunk), dtype=np.float32))
        vectors = np.vstack(chunks)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
