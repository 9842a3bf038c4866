"""The ``facerec`` command: serve, database, tokens, index (and, as they land, enroll and recognize)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session
from tqdm import tqdm

from service.db import migrate
from service.db import tokens as token_queries
from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings


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


@main.group()
def index() -> None:
    """The FAISS identity index (a cache of the embeddings in SQL)."""


@index.command("rebuild")
@click.option("--domain", default=None, help="only this domain (default: every domain)")
@click.pass_obj
def index_rebuild(settings: Settings, domain: str | None) -> None:
    """Rebuild index files from the embeddings stored in SQL."""
    from service.gallery.gallery import Gallery
    from service.recognition.faces import EMBEDDING_DIM
    from service.recognition.models import find_model_pack
    from service.search.store import IndexStore

    engine = create_db_engine(settings.database_url)
    try:
        pack = find_model_pack(settings.model_dir)
        gallery = Gallery(create_session_factory(engine), IndexStore(settings.index_dir, EMBEDDING_DIM, pack.name))
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
