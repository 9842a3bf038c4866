"""Batches listed and pruned, and what is stored, from the CLI (#21) — real SQLite/PostgreSQL and models."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.cli import main
from service.common.time import utcnow
from service.db.models import Batch, BatchEntry, BatchFace
from tests.conftest import KNN, auth


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def three_batches(facerec_env: dict[str, str], tmp_path: Path, sessions: sessionmaker[Session]) -> list[str]:
    """Three batches of example.com, made 40, 20 and 0 days old, and one of other.org made 40 days old."""
    ids = []
    for domain, age in (("example.com", 40), ("example.com", 20), ("example.com", 0), ("other.org", 40)):
        folder = tmp_path / f"{domain}-{age}"
        folder.mkdir()
        shutil.copy(KNN / "test" / "kit_with_rose.jpg", folder / "kit_with_rose.jpg")
        code, output = run(facerec_env, "recognize", str(folder), "--domain", domain)
        assert code == 0, output
        batch_id = next(line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("batch "))
        with sessions.begin() as session:
            session.execute(update(Batch).where(Batch.id == batch_id).values(created_at=utcnow() - timedelta(days=age)))
        ids.append(batch_id)
    return ids


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Batch, BatchEntry, BatchFace)
        )


def test_a_dry_run_changes_nothing_and_counts_what_the_prune_then_removes(
    facerec_env: dict[str, str], three_batches: list[str], sessions: sessionmaker[Session]
) -> None:
    before = counts(sessions)
    code, dry = run(facerec_env, "batches", "prune", "--older-than", "30", "--domain", "example.com", "--dry-run")
    assert code == 0, dry
    assert counts(sessions) == before
    assert dry.startswith("would remove 1 batch, 1 entry, 2 stored faces (")
    code, real = run(facerec_env, "batches", "prune", "--older-than", "30", "--domain", "example.com")
    # Each run takes its own cutoff ("created before <now - 30 days>"), which may tick a second: compare the counts.
    assert real.split(" created before ")[0] == dry.split(" created before ")[0].replace("would remove", "removed")
    assert counts(sessions) == (before[0] - 1, before[1] - 1, before[2] - 2)
    with sessions() as session:
        assert session.get(Batch, three_batches[0]) is None
        assert session.get(Batch, three_batches[3]) is not None  # another domain's batch of the same age stays


def test_prune_without_a_domain_covers_every_domain(
    facerec_env: dict[str, str], three_batches: list[str], sessions: sessionmaker[Session]
) -> None:
    code, output = run(facerec_env, "batches", "prune", "--older-than", "10")
    assert code == 0
    assert output.startswith("removed 3 batches, 3 entries, 6 stored faces")
    with sessions() as session:
        assert [b.id for b in session.scalars(select(Batch))] == [three_batches[2]]


def test_batches_list_shows_the_newest_first(facerec_env: dict[str, str], three_batches: list[str]) -> None:
    code, output = run(facerec_env, "batches", "list", "--domain", "example.com")
    assert code == 0
    listed = [line.split()[0] for line in output.splitlines()[1:-1]]
    assert listed == [three_batches[2], three_batches[1], three_batches[0]]
    assert output.splitlines()[-1] == "3 batches shown of 3"


def test_stats_counts_what_each_domain_stores(facerec_env: dict[str, str], three_batches: list[str]) -> None:
    code, output = run(facerec_env, "stats")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in output.splitlines()[1:]}
    assert rows["example.com"][1:4] == ["3", "3", "6"]  # batches, entries, stored faces
    assert rows["other.org"][1:4] == ["1", "1", "2"]
    assert int(rows["example.com"][4].replace(",", "")) > 6 * 2048  # crops and embeddings


def test_the_stats_endpoint_shows_the_admin_s_own_domain_only(
    client: httpx.Client, admin: str, tokens: Callable[..., str]
) -> None:
    files = [("photos[]", ("k.jpg", (KNN / "test" / "kit_with_rose.jpg").read_bytes(), "image/jpeg"))]
    client.post("/api/batch-photos/recognize", headers=auth(admin), files=files)
    body = client.get("/api/stats", headers=auth(admin)).json()
    assert (body["domain"], body["batches"], body["entries"], body["batch_faces"]) == ("example.com", 1, 1, 2)
    other = client.get("/api/stats", headers=auth(tokens("other.org", "admin"))).json()
    assert (other["domain"], other["batches"]) == ("other.org", 0)
    assert client.get("/api/stats", headers=auth(tokens("example.com", "user"))).status_code == 403
