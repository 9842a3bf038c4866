"""The ``facerec`` command: serve, database, tokens, index (and, as they land, enroll and recognize)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session
from tqdm import tqdm

from service.db import migrate
from service.db import tokens as token_queries
from service.db.session import create_db_engine, create_session_factory
from service.recognition.photos import FilePhoto
from service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from service.api.state import Services
    from service.gallery.gallery import Gallery


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """facerec: self-hosted face recognition for batches of photos."""
    ctx.obj = Settings()
    logging.basicConfig(level=ctx.obj.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # FAISS reports at INFO which CPU build it tried first; that is noise for an operator.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.pass_obj
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run pending migrations (unless FACEREC_AUTO_MIGRATE=false), then serve the API and web page."""
    import uvicorn

    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply migrations up to REVISION (alembic upgrade)."""
    migrate.upgrade(settings.database_url, revision)
    click.echo(f"database is at {revision}")


@main.group()
def token() -> None:
    """API tokens (stored hashed; a token is shown once, when created)."""


@token.command("create")
@click.option("--domain", required=True, help="the tenant the token belongs to")
@click.option("--admin", is_flag=True, help="may enroll and manage people")
@click.option("--name", default="", help="a label to recognise the token by")
@click.pass_obj
def token_create(settings: Settings, domain: str, admin: bool, name: str) -> None:
    """Create a token and print it alone on the last line."""
    try:
        with _session(settings) as session:
            row, secret = token_queries.create_token(session, domain, "admin" if admin else "user", name)
            click.echo(f"created {row.role} token {row.id} for domain {row.domain!r}; it is shown only now:", err=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(secret)


@token.command("list")
@click.option("--domain", default=None)
@click.pass_obj
def token_list(settings: Settings, domain: str | None) -> None:
    """List tokens (never their secrets)."""
    with _session(settings) as session:
        rows = token_queries.list_tokens(session, domain)
        click.echo(f"{'id':>4}  {'domain':<24} {'role':<6} {'name':<20} {'created':<19}  {'last used':<19}  status")
        for row in rows:
            status = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            last = f"{row.last_used_at:%Y-%m-%d %H:%M:%S}" if row.last_used_at else "-"
            click.echo(
                f"{row.id:>4}  {row.domain:<24} {row.role:<6} {row.name:<20} "
                f"{row.created_at:%Y-%m-%d %H:%M:%S}  {last:<19}  {status}"
            )


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def token_revoke(settings: Settings, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `facerec token list`)."""
    with _session(settings) as session:
        if not token_queries.revoke_token(session, token_id):
            click.echo(f"no active token with id {token_id}", err=True)
            sys.exit(1)
    click.echo(f"token {token_id} revoked")


def _offline_gallery(settings: Settings) -> tuple[Gallery, Engine]:
    """The gallery over SQL and the index folder, without loading the models."""
    from service.gallery.gallery import Gallery
    from service.recognition.faces import EMBEDDING_DIM
    from service.recognition.models import find_model_pack
    from service.search.store import IndexStore

    engine = create_db_engine(settings.database_url)
    pack = find_model_pack(settings.model_dir)
    return Gallery(create_session_factory(engine), IndexStore(settings.index_dir, EMBEDDING_DIM, pack.name)), engine


@main.group()
def index() -> None:
    """The FAISS identity index (a cache of the embeddings in SQL)."""


@index.command("rebuild")
@click.option("--domain", default=None, help="only this domain (default: every domain)")
@click.pass_obj
def index_rebuild(settings: Settings, domain: str | None) -> None:
    """Rebuild index files from the embeddings stored in SQL."""
    gallery, engine = _offline_gallery(settings)
    try:
        domains = [domain] if domain else gallery.domains()
        total = 0
        for name in tqdm(domains, desc="rebuilding", unit="domain", disable=None):
            rebuilt = gallery.rebuild(name)
            total += rebuilt.ntotal
            tqdm.write(
                f"{name}: {rebuilt.ntotal} faces of {rebuilt.identity_count} people "
                f"(nlist {rebuilt.nlist}, nprobe {rebuilt.nprobe})"
            )
        click.echo(f"rebuilt {len(domains)} domain index(es), {total} faces")
    finally:
        engine.dispose()


def _local_services(settings: Settings) -> Services:
    """Database, models and index for commands that work without a server."""
    from service.app import build_services

    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    return build_services(settings)


def _photo_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


@index.command("verify")
@click.option("--domain", default=None, help="only this domain (default: every domain)")
@click.option("--no-repair", is_flag=True, help="only report")
@click.pass_obj
def index_verify(settings: Settings, domain: str | None, no_repair: bool) -> None:
    """Check that the index files agree with SQL; rebuild the ones that do not."""
    gallery, engine = _offline_gallery(settings)
    try:
        disagreeing = 0
        for name in [domain] if domain else gallery.domains():
            check = gallery.verify(name, repair=not no_repair)
            if check.consistent:
                click.echo(f"{name}: ok ({check.sql_faces} faces, gallery version {check.sql_version})")
                continue
            disagreeing += 1
            click.echo(f"{name}: DISAGREES with SQL")
            for problem in check.problems:
                click.echo(f"  - {problem}")
            if check.repaired:
                click.echo(f"  repaired: rebuilt from SQL ({check.sql_faces} faces)")
    finally:
        engine.dispose()
    if disagreeing and no_repair:
        sys.exit(1)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--domain", required=True)
@click.option("--update", is_flag=True, help="add photos to people who already exist")
@click.pass_obj
def enroll(settings: Settings, directory: Path, domain: str, update: bool) -> None:
    """Enroll DIRECTORY/<person name>/<photos> into DOMAIN's gallery."""
    from service.db import identities as identity_queries
    from service.gallery import enrollment

    services = _local_services(settings)
    people = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    enrolled_faces, touched, problems = 0, 0, []
    try:
        for person in tqdm(people, desc="enrolling", unit="person", disable=None):
            photos = [FilePhoto(p) for p in _photo_files(person)]
            with services.sessions() as session:
                existing = identity_queries.find_by_name(session, domain, enrollment.clean_name(person.name))
            if existing is not None and not update:
                problems.append(f"{person.name}: already enrolled (use --update to add photos)")
                continue
            prepared, rejected = enrollment.prepare_faces(
                photos,
                services.model,
                max_file_bytes=settings.max_file_bytes,
                max_image_pixels=settings.max_image_pixels,
            )
            result = enrollment.enroll(
                services.gallery,
                domain,
                prepared,
                rejected,
                model_name=services.model.name,
                name=None if existing else person.name,
                identity_id=existing.id if existing else None,
            )
            problems.extend(f"{person.name}/{r.filename}: {r.error}" for r in result.rejected)
            if result.enrolled:
                touched += 1
                enrolled_faces += len(result.enrolled)
    finally:
        services.runner.shutdown()
        services.engine.dispose()
    click.echo(f"enrolled {enrolled_faces} face(s) for {touched} of {len(people)} people in {domain!r}")
    for problem in problems:
        click.echo(f"  rejected: {problem}")
    if enrolled_faces == 0:
        sys.exit(1)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--domain", required=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="write the spec's CSV here")
@click.option("--threshold", type=click.FloatRange(0, 100), default=None, help="match threshold (0-100)")
@click.pass_obj
def recognize(settings: Settings, directory: Path, domain: str, csv_path: Path | None, threshold: float | None) -> None:
    """Recognise the photos in DIRECTORY as batches stored like API batches."""
    from service.batches.export import csv_chunks
    from service.batches.workflow import BatchRequest, run_batch
    from service.db.batches import iter_export_rows

    files = _photo_files(directory)
    if not files:
        raise click.UsageError(f"no files in {directory}")
    services = _local_services(settings)
    chosen = settings.match_threshold if threshold is None else threshold
    batch_ids: list[str] = []
    try:
        chunks = [files[i : i + settings.max_batch_size] for i in range(0, len(files), settings.max_batch_size)]
        for chunk in tqdm(chunks, desc="recognising", unit="batch", disable=None):
            run = run_batch(
                BatchRequest(photos=[FilePhoto(p) for p in chunk], domain=domain, threshold=chosen),
                services.model,
                services.gallery,
                services.sessions,
                settings,
            )
            for error in run.outcome.errors:
                click.echo(f"  rejected: {error.filename}: {error.error}")
            if run.batch is None:
                continue
            batch_ids.append(run.batch.id)
            s = run.summary
            click.echo(
                f"batch {run.batch.id}: {s.total_photos} photos, {s.recognized_count} recognised "
                f"({s.recognition_rate}%), persons: {', '.join(s.persons_list) or '-'}"
            )
        if csv_path is not None:
            with services.sessions() as session, csv_path.open("wb") as out:
                for index, batch_id in enumerate(batch_ids):
                    # Later batches continue the same file without repeating the header line.
                    out.writelines(csv_chunks(iter_export_rows(session, batch_id), domain, header=index == 0))
            click.echo(f"wrote {csv_path}")
    finally:
        services.runner.shutdown()
        services.engine.dispose()
    if not batch_ids:
        sys.exit(1)


@main.group()
def identities() -> None:
    """Enrolled people."""


@identities.command("list")
@click.option("--domain", required=True)
@click.option("--query", "-q", default=None, help="case-insensitive name search")
@click.pass_obj
def identities_list(settings: Settings, domain: str, query: str | None) -> None:
    """List the people of DOMAIN with their face counts."""
    from service.db import identities as identity_queries

    with _session(settings) as session:
        total, rows = identity_queries.list_identities(session, domain, 10_000, 0, query)
        click.echo(f"{'id':>5}  {'faces':>5}  name")
        for row in rows:
            click.echo(f"{row.identity.id:>5}  {row.face_count:>5}  {row.identity.name}")
        click.echo(f"{total} people")
