"""Unknown faces: group a batch's (or the domain's recent) unrecognised faces into people, and name them.

Built on the faces kept with each batch (their embeddings and crops): naming a group enrolls the person
from those stored faces — no re-upload — through the same quality and duplicate checks as enrollment, and
re-labels every entry they appear in, as recorded corrections.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from msgspec import Struct
from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import is_batch_id
from service.batches.service import refresh_summary, relabel
from service.batches.views import crop_url
from service.common.errors import InvalidInputError, NotFoundError, NothingUsableError, RejectedPhoto
from service.db import batches as batch_queries
from service.db import identities as identity_queries
from service.db.gallery import embedding_from_bytes
from service.db.models import BatchFace
from service.gallery import enrollment
from service.gallery.enrollment import LooksLikeSomeoneError, PreparedFace
from service.gallery.gallery import Gallery
from service.gallery.views import IdentityOut, identity_out
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import EMBEDDING_DIM, FaceModel
from service.recognition.quality import FaceQuality, describe, judge
from service.search.clusters import cluster_faces
from service.settings import Settings

logger = logging.getLogger("service.batches")
MAX_NAMED_FACES = 1000


class UnknownFace(Struct):
    face_id: int
    batch_id: str
    filename: str
    face: int  # the face's index in its entry's ``faces``
    crop_url: str | None


class UnknownCluster(Struct):
    cluster_id: str  # the smallest face id of the group: stable while its faces stay unknown
    size: int
    faces: list[UnknownFace]


class UnknownClusters(Struct):
    success: bool
    clusters: list[UnknownCluster]  # biggest first; single faces last
    faces_considered: int
    limit: int  # at most this many of the newest unknown faces are grouped


class DismissedFaces(Struct):
    success: bool
    faces: list[UnknownFace]  # newest first
    limit: int  # at most this many are listed


class NamedFaces(Struct):
    success: bool
    identity: IdentityOut
    named: int  # faces now labelled as the person
    enrolled: list[int]  # gallery face ids created from them
    rejected: list[RejectedPhoto]  # faces not enrolled (unfit), still labelled


@dataclass(frozen=True, slots=True)
class Naming:
    """Who a group of faces is: a new person (``name``) or an enrolled one (``identity_id``)."""

    face_ids: list[int]
    name: str | None = None
    identity_id: int | None = None
    force: bool = False
    token_id: int | None = None


def unknown_face(row: Any) -> UnknownFace:
    """The answer's view of one row of :func:`service.db.batches.unknown_faces`."""
    return UnknownFace(
        face_id=row.id,
        batch_id=row.batch_id,
        filename=row.filename,
        face=row.face_number,
        crop_url=crop_url(row.batch_id, row.id) if row.has_crop else None,
    )


class UnknownFacesService:
    """Grouping and naming the unrecognised faces of one database's batches."""

    def __init__(self, sessions: sessionmaker[Session], gallery: Gallery, model: FaceModel, settings: Settings) -> None:
        self.sessions = sessions
        self.gallery = gallery
        self.model = model
        self.settings = settings

    def clusters(
        self, domain: str, *, batch_ids: list[str] | None = None, since: datetime | None = None
    ) -> UnknownClusters:
        """The unknown faces (newest ``unknown_faces_limit``) grouped by person; of some batches, or since."""
        limit = self.settings.unknown_faces_limit
        with self.sessions() as session:
            if batch_ids is not None:
                for batch_id in batch_ids:
                    if not is_batch_id(batch_id) or batch_queries.get_batch(session, domain, batch_id) is None:
                        raise NotFoundError(f"Batch not found: {batch_id[:64]}")
            rows = batch_queries.unknown_faces(session, domain, batch_ids=batch_ids, since=since, limit=limit)
        if not rows:
            return UnknownClusters(success=True, clusters=[], faces_considered=0, limit=limit)
        vectors = np.vstack([embedding_from_bytes(row.embedding) for row in rows])
        # Oldest first, so a group lists its faces in the order they were seen.
        rows, vectors = rows[::-1], vectors[::-1]
        groups = cluster_faces(vectors, self.settings.cluster_similarity)
        clusters = [
            UnknownCluster(
                cluster_id=str(min(rows[i].id for i in group)),
                size=len(group),
                faces=[unknown_face(rows[i]) for i in group],
            )
            for group in groups
        ]
        return UnknownClusters(success=True, clusters=clusters, faces_considered=len(rows), limit=limit)

    def dismiss(self, domain: str, face_ids: list[int]) -> int:
        """Leave these faces out of every later grouping ("not a face", or nobody to name); how many."""
        with self.sessions.begin() as session:
            faces = [face for face in self._faces(session, domain, face_ids) if not face.dismissed]
            for face in faces:
                face.dismissed = True
            return len(faces)

    def dismissed(self, domain: str, batch_id: str) -> DismissedFaces:
        """A batch's dismissed unknown faces (newest ``unknown_faces_limit``): the ones an admin may put back."""
        limit = self.settings.unknown_faces_limit
        with self.sessions() as session:
            if not is_batch_id(batch_id) or batch_queries.get_batch(session, domain, batch_id) is None:
                raise NotFoundError(f"Batch not found: {batch_id[:64]}")
            rows = batch_queries.unknown_faces(session, domain, batch_ids=[batch_id], limit=limit, dismissed=True)
        return DismissedFaces(success=True, faces=[unknown_face(row) for row in rows], limit=limit)

    def restore(self, domain: str, face_ids: list[int]) -> int:
        """Put dismissed faces back among the unknown faces to group (an undo of :meth:`dismiss`); how many."""
        with self.sessions.begin() as session:
            faces = [face for face in self._faces(session, domain, face_ids) if face.dismissed]
            for face in faces:
                face.dismissed = False
            return len(faces)

    def name(self, domain: str, naming: Naming) -> NamedFaces:
        """Name a group of stored faces: enroll the fit ones for the person (checked as any enrollment) and
        label every one of them as the person in its batch, as recorded corrections."""
        if (naming.name is None) == (naming.identity_id is None):
            raise InvalidInputError("give either name (a new person) or identity_id (an enrolled one)")
        if not naming.face_ids or len(naming.face_ids) > MAX_NAMED_FACES:
            raise InvalidInputError(f"face_ids must list 1 to {MAX_NAMED_FACES} faces")
        limits = self.settings.enrollment_quality
        with self.sessions() as session:
            faces = self._faces(session, domain, naming.face_ids)
            if any(face.embedding is None for face in faces):
                raise InvalidInputError(
                    "some of these faces kept no embedding (FACEREC_KEEP_BATCH_FACES was off): they cannot be enrolled"
                )
            prepared, rejected = [], []
            for face in faces:
                label = f"face {face.id} ({face.batch_id})"
                measured = FaceQuality(**face.quality) if face.quality else None
                quality = judge(measured, limits) if measured is not None else None
                if quality is not None and quality.issues:
                    rejected.append(RejectedPhoto(label, f"Not enrolled: {describe(quality, limits)}", quality.issues))
                    continue
                prepared.append(
                    PreparedFace(
                        filename=label,
                        embedding=embedding_from_bytes(face.embedding or b""),
                        det_score=face.det_score,
                        content_sha256=hashlib.sha256(f"batch-face:{face.id}".encode()).hexdigest(),
                        thumbnail=face.crop or b"",
                        note=None,
                    )
                )
            known = self._gallery_of(session, domain, naming.identity_id)
        if naming.name is not None:
            enrollment.clean_name(naming.name)
            if not prepared:
                raise NothingUsableError("None of these faces can be enrolled", rejected, field="rejected")
            if not naming.force:
                self._refuse_if_enrolled(domain, prepared)
        result = (
            enrollment.enroll(
                self.gallery,
                domain,
                prepared,
                rejected,
                model_name=self.model.name,
                name=naming.name,
                identity_id=naming.identity_id,
            )
            if prepared
            else None
        )
        identity_id = naming.identity_id if naming.identity_id is not None else result.identity.id  # type: ignore[union-attr]
        return self._label(domain, naming, identity_id, known, result.enrolled if result else [], rejected)

    def _label(
        self,
        domain: str,
        naming: Naming,
        identity_id: int,
        known: np.ndarray,
        enrolled: list[enrollment.Enrolled],
        rejected: list[RejectedPhoto],
    ) -> NamedFaces:
        with self.sessions.begin() as session:
            identity = identity_queries.get_identity(session, domain, identity_id)
            if identity is None:
                raise NotFoundError(f"Identity {identity_id} not found")
            faces = self._faces(session, domain, naming.face_ids)
            vectors = np.vstack([embedding_from_bytes(f.embedding or b"") for f in faces])
            for number, face in enumerate(faces):
                # How much this face looks like the person: its closest other face of theirs (not itself).
                others = np.vstack([known, np.delete(vectors, number, axis=0)]) if len(faces) > 1 else known
                confidence = rounded_confidence(float(np.max(others @ vectors[number]))) if len(others) else None
                relabel(session, face, identity, confidence, naming.token_id)
            session.flush()
            for batch_id in sorted({face.batch_id for face in faces}):
                refresh_summary(session, batch_id)
            count = identity_queries.face_count(session, identity.id)
            out = identity_out(identity, count, enrolled[-1].face_id if enrolled else None)
        logger.info("unknown faces named domain=%r person=%r faces=%d", domain, out.name, len(faces))
        return NamedFaces(
            success=True,
            identity=out,
            named=len(faces),
            enrolled=[e.face_id for e in enrolled],
            rejected=rejected,
        )

    @staticmethod
    def _faces(session: Session, domain: str, face_ids: list[int]) -> list[BatchFace]:
        faces = batch_queries.faces_by_id(session, domain, sorted(set(face_ids)))
        missing = sorted(set(face_ids) - {face.id for face in faces})
        if missing:
            raise NotFoundError(f"Faces not found: {', '.join(map(str, missing[:20]))}")
        return faces

    @staticmethod
    def _gallery_of(session: Session, domain: str, identity_id: int | None) -> np.ndarray:
        if identity_id is None:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if identity_queries.get_identity(session, domain, identity_id) is None:
            raise NotFoundError(f"Identity {identity_id} not found")
        faces = identity_queries.faces_of(session, identity_id)
        return (
            np.vstack([embedding_from_bytes(f.embedding) for f in faces]) if faces else np.zeros((0, 512), np.float32)
        )

    def _refuse_if_enrolled(self, domain: str, prepared: list[PreparedFace]) -> None:
        matches = self.gallery.search(domain, np.vstack([p.embedding for p in prepared]), k=1)
        for face, found in zip(prepared, matches, strict=True):
            if found and rounded_confidence(found[0].similarity) >= self.settings.match_threshold:
                raise LooksLikeSomeoneError(
                    face.filename, found[0].identity_id, found[0].name, rounded_confidence(found[0].similarity)
                )
