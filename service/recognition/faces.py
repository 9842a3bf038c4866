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

from service.recognition.detection_policy import DetectionPolicy
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


@dataclass(frozen=True, slots=True)
class Detection:
    """The faces of a photo: the largest aligned, how many in all, and the passes that found them."""

    candidates: list[FaceCandidate]
    found: int
    passes: str  # "640"; "640+border" for a close crop searched again in a border; "640+1280" with a finer pass


def merge_detections(
    boxes: np.ndarray, points: np.ndarray, more_boxes: np.ndarray, more_points: np.ndarray, overlap: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Two passes' faces as one list: where boxes of both overlap (intersection over union above ``overlap``)
    the higher score is kept."""
    all_boxes = np.concatenate([boxes, more_boxes]) if len(more_boxes) else boxes
    all_points = np.concatenate([points, more_points]) if len(more_points) else points
    if not len(all_boxes):
        return all_boxes, all_points
    keep = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in all_boxes],
        [float(b[4]) for b in all_boxes],
        0.0,
        overlap,
    )
    chosen = np.asarray(keep, dtype=np.int64).reshape(-1)
    return all_boxes[chosen], all_points[chosen]


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
        policy: DetectionPolicy | None = None,
    ) -> None:
        self.name = pack.name
        self.providers = check_providers(providers)
        self.det_size = det_size
        self.min_image_side = min_image_side
        self.max_aspect_ratio = max_aspect_ratio
        self.det_threshold = det_threshold
        self.policy = policy or DetectionPolicy()
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

    def _detector_input(self, width: int, height: int, det_size: int | None = None) -> tuple[int, int]:
        """The detector input for a photo: fitted to it on the CPU, where a 640 square spent a third of the shared
        photos' detection on padding (21.0 -> 14.5 CPU ms/photo); a fixed square on other providers, where padding
        is cheap and one shape spares a kernel search (cuDNN's) per new shape."""
        target = det_size or self.det_size
        if self.providers[0] == CPU_PROVIDER:
            return detector_input_size(width, height, target)
        side = detector_input_size(1, 1, target)[0]
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
        found = self.find_faces(image, limit)
        return found.candidates, found.found

    def find_faces(self, image: DecodedImage, limit: int | None) -> Detection:
        """Every face a person looking at the photo would point at: the ``limit`` largest aligned, how many
        there are, and which detection passes it took.

        One pass at ``det_size`` finds most faces. A photo where it finds none, or one face filling the frame
        (a close-cropped portrait), is searched again inside a border: the detector needs context around a
        face. A photo much larger than the detector's input where it finds none, or faces near the
        detector's lower size limit, gets a finer pass at ``policy.fine_size`` (a class or crowd photo);
        both passes' faces are merged without duplicates.
        """
        self.check_shape(image)
        pixels = image.pixels
        policy = self.policy
        boxes, points = self._run(pixels, self.det_size, image)
        passes = [str(self.det_size)]
        source, offset = pixels, 0
        aligned_input = pixels.shape[:2] == (ALIGNED_SIZE, ALIGNED_SIZE)
        if policy.border_retry and not aligned_input and self._fills_frame(boxes, pixels):
            border = max(pixels.shape[:2]) // 2
            colour = [float(c) for c in cv2.mean(pixels)[:3]]
            framed = cv2.copyMakeBorder(pixels, border, border, border, border, cv2.BORDER_CONSTANT, value=colour)
            framed_boxes, framed_points = self._run(framed, self.det_size, image)
            if len(framed_boxes):
                boxes, points, source, offset = framed_boxes, framed_points, framed, border
                passes.append("border")
        if offset == 0 and self._needs_fine_pass(boxes, pixels):
            fine_boxes, fine_points = self._run(pixels, policy.fine_size, image)
            boxes, points = merge_detections(boxes, points, fine_boxes, fine_points)
            passes.append(str(policy.fine_size))
        count = len(boxes)
        areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0) if count else np.zeros(0)
        # Only the faces that will be used are aligned: a crowd of tiny faces must not cost an alignment each.
        largest = [int(i) for i in np.argsort(-areas, kind="stable")][:limit]
        height, width = pixels.shape[:2]
        candidates = []
        for i in largest:
            x1, y1, x2, y2 = (float(v) - offset for v in boxes[i, :4])
            # A face cut by the frame is detected past it; what is reported lies inside the photo.
            x1, x2 = (min(max(v, 0.0), float(width)) for v in (x1, x2))
            y1, y2 = (min(max(v, 0.0), float(height)) for v in (y1, y2))
            candidates.append(
                FaceCandidate(
                    box=(x1 * image.scale, y1 * image.scale, x2 * image.scale, y2 * image.scale),
                    det_score=float(boxes[i, 4]),
                    landmarks=(points[i] - offset) * image.scale,
                    crop=align_face(source, points[i]),
                )
            )
        if not count and aligned_input and limit != 0:
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
            count = 1
        return Detection(candidates, count, "+".join(passes))

    def _run(self, pixels: np.ndarray, det_size: int, image: DecodedImage) -> tuple[np.ndarray, np.ndarray]:
        """SCRFD on ``pixels`` at ``det_size``: boxes with scores (n x 5) and landmarks (n x 5 x 2), in pixels."""
        size = self._detector_input(pixels.shape[1], pixels.shape[0], det_size)
        try:
            boxes, landmarks = self._detector.detect(pixels, input_size=size, det_thresh=self.det_threshold)
        except cv2.error as exc:  # an image OpenCV cannot resize; one photo's problem, not the batch's
            raise ImageError(f"The face detector could not process this image ({image.width}x{image.height})") from exc
        if landmarks is None or not len(boxes):
            return np.zeros((0, 5), dtype=np.float32), np.zeros((0, 5, 2), dtype=np.float32)
        return np.asarray(boxes, dtype=np.float32), np.asarray(landmarks, dtype=np.float32)

    def _fills_frame(self, boxes: np.ndarray, pixels: np.ndarray) -> bool:
        """No face, or one face that fills the photo: a close crop the detector may have misread."""
        if len(boxes) == 0:
            return True
        if len(boxes) > 1:
            return False
        height, width = pixels.shape[:2]
        x1, y1, x2, y2 = boxes[0, :4]
        return bool((x2 - x1) >= self.policy.fill_ratio * width or (y2 - y1) >= self.policy.fill_ratio * height)

    def _needs_fine_pass(self, boxes: np.ndarray, pixels: np.ndarray) -> bool:
        """A photo much larger than the detector's input where it found nothing, or faces near its lower limit."""
        policy = self.policy
        long_side = max(pixels.shape[:2])
        if not policy.fine_size or long_side < policy.fine_min_side or policy.fine_size <= self.det_size:
            return False
        if len(boxes) == 0:
            return True
        # Face sizes as the first pass saw them (its input is the photo scaled to det_size).
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (self.det_size / long_side)
        return bool(sides.min() < policy.small_face)

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
