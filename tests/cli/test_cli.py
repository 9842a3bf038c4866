"""The facerec command, end to end in a temporary data folder."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import main
from service.db import identities as identity_queries
from service.db.migrate import is_up_to_date
from service.db.session import create_db_engine, create_session_factory
from service.gallery import enrollment
from service.gallery.gallery import Gallery
from service.search.index import IdentityIndex
from service.search.store import IndexStore
from tests.conftest import FACES, KNN, ServerProcess


@pytest.fixture
def env(facerec_env: dict[str, str]) -> dict[str, str]:
    """FACEREC_* variables for this test's fresh database and data folder."""
    return facerec_env


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def index_file(tmp_path: Path, domain: str = "example.com") -> tuple[IndexStore, IdentityIndex, int]:
    """The CLI's index store, and the domain's file as it is now (index and gallery version)."""
    store = IndexStore(tmp_path / "index", 512, "buffalo_s")
    found = store.read_file(domain)
    assert found is not None
    return store, *found


def test_db_upgrade_brings_a_new_database_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, output = run({"FACEREC_DATABASE_URL": url}, "db", "upgrade")
    assert code == 0, output
    engine = create_db_engine(url)
    assert is_up_to_date(engine, url)
    engine.dispose()


def test_token_create_prints_the_token_alone_on_its_last_line_and_list_never_shows_it(env: dict[str, str]) -> None:
    code, output = run(env, "token", "create", "--domain", "acme.test", "--admin", "--name", "ops")
    assert code == 0, output
    token = output.strip().splitlines()[-1]
    assert token.startswith("frk_")
    assert " " not in token
    code, listing = run(env, "token", "list")
    assert code == 0
    assert "acme.test" in listing
    assert "admin" in listing
    assert "ops" in listing
    assert token not in listing


def test_token_revoke_marks_the_token_revoked_and_refuses_unknown_ids(env: dict[str, str]) -> None:
    run(env, "token", "create", "--domain", "acme.test")
    code, output = run(env, "token", "revoke", "1")
    assert code == 0, output
    assert "revoked" in run(env, "token", "list")[1]
    assert run(env, "token", "revoke", "1")[0] == 1
    assert run(env, "token", "revoke", "99")[0] == 1


def test_enroll_then_recognize_writes_the_right_names_to_the_csv(env: dict[str, str], tmp_path: Path) -> None:
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    assert code == 0, output
    assert "enrolled 9 face(s) for 5 of 5 people" in output
    out = tmp_path / "out.csv"
    code, output = run(env, "recognize", str(KNN / "test"), "--domain", "example.com", "--csv", str(out))
    assert code == 0, output
    rows = {row["Filename"]: row for row in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows["obama1.jpg"]["Primary Person"] == "obama"
    assert rows["alex_lacamoire1.jpg"]["Primary Person"] == "alex_lacamoire"
    assert rows["johnsnow_test1.jpg"]["Primary Person"] == "kit_harington"
    assert rows["obama_and_biden.jpg"]["Face Count"] == "3"
    assert all(row["Recognized"] == "Yes" for row in rows.values())


def test_enroll_again_needs_update_to_add_photos(env: dict[str, str]) -> None:
    assert run(env, "enroll", str(KNN / "train"), "--domain", "example.com")[0] == 0
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    assert code == 1
    assert "use --update" in output
    code, output = run(env, "enroll", str(KNN / "train"), "--domain", "example.com", "--update")
    assert code == 1  # every photo is already enrolled: nothing new
    assert "already enrolled" in output


def test_identities_list_shows_people_with_face_counts(env: dict[str, str]) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    code, output = run(env, "identities", "list", "--domain", "example.com")
    assert code == 0
    assert "obama" in output
    assert "5 people" in output


def test_index_rebuild_reports_the_faces_per_domain(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    for file in (tmp_path / "index").glob("*.npz"):
        file.unlink()
    code, output = run(env, "index", "rebuild")
    assert code == 0, output
    assert "example.com: 9 faces of 5 people" in output
    assert list((tmp_path / "index").glob("*.npz"))


def test_serve_migrates_and_serves_a_healthy_api(facerec_env: dict[str, str], tmp_path: Path) -> None:
    fresh = {**facerec_env, "FACEREC_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    with ServerProcess(fresh) as server:
        response = httpx.get(f"{server.url}/api/batch-photos/health", timeout=30)
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_index_verify_says_ok_when_the_files_agree_with_sql(env: dict[str, str]) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 0, output
    assert "example.com: ok (9 faces" in output


def test_index_verify_finds_and_repairs_an_index_that_lost_a_face(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    store, index, version = index_file(tmp_path)
    index.remove(np.array([1]))
    store.save("example.com", index, version)  # same version, one face short: what a torn update could leave

    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 1
    assert "example.com: FAILED" in output
    assert "1 face(s) in SQL but not in the index" in output
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "repaired: rebuilt from SQL (9 faces)" in output
    assert "example.com: ok" in run(env, "index", "verify", "--no-repair")[1]


def test_index_verify_rebuilds_a_missing_index_file(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    for file in (tmp_path / "index").glob("*.npz"):
        file.unlink()
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "no index file" in output
    assert "repaired: rebuilt from SQL (9 faces)" in output


def test_index_verify_reports_a_file_behind_by_replayable_changes_and_succeeds(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    # Another replica (same database, its own index folder) removes a person and a face: two changes
    # that reach SQL's change log but not this folder's file.
    engine = create_db_engine(database_url)
    other = Gallery(create_session_factory(engine), IndexStore(tmp_path / "other-index", 512, "buffalo_s"))
    with other.sessions() as session:
        alex = identity_queries.find_by_name(session, "example.com", "alex_lacamoire")
        biden = identity_queries.find_by_name(session, "example.com", "biden")
        assert alex is not None
        assert biden is not None
        biden_face = identity_queries.faces_of(session, biden.id)[0].id
    enrollment.delete_identity(other, "example.com", alex.id)
    enrollment.delete_face(other, "example.com", biden.id, biden_face)
    engine.dispose()

    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 0, output
    assert "example.com: behind by 2 changes (file at gallery version 5, SQL at 7)" in output
    assert "1 domain: 0 ok, 1 behind, 0 failed" in output
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "repaired: caught up: replayed 2 change(s), saved at gallery version 7" in output
    assert "example.com: ok" in run(env, "index", "verify", "--no-repair")[1]


def test_index_verify_fails_on_a_ghost_face_in_the_index(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    store, index, version = index_file(tmp_path)
    index.add(np.array([999]), np.array([1]), np.ones((1, 512), dtype=np.float32) / np.sqrt(512))
    store.save("example.com", index, version)  # a face SQL never had, at SQL's own version

    code, output = run(env, "index", "verify", "--no-repair")
    assert code == 1
    assert "1 face(s) in the index but not in SQL, e.g. [999]" in output
    assert "1 domain: 0 ok, 0 behind, 1 failed" in output


def test_index_verify_fails_on_a_corrupt_file_and_repair_rebuilds_it(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    store, _, _ = index_file(tmp_path)
    store.path_for("example.com").write_bytes(b"PK\x03\x04 torn")

    result = CliRunner().invoke(main, ["index", "verify", "--no-repair"], env=env)
    assert result.exit_code == 1
    assert "index file is unreadable" in result.stdout
    assert "Traceback" not in result.output
    code, output = run(env, "index", "verify")
    assert code == 0
    assert "repaired: rebuilt from SQL (9 faces)" in output


def test_index_commands_refuse_a_domain_without_a_gallery(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    for command in ("verify", "rebuild"):
        result = CliRunner().invoke(main, ["index", command, "--domain", "exmaple.com"], env=env)
        assert result.exit_code == 1
        assert "no gallery for domain 'exmaple.com'" in result.stderr
        assert "(domains with a gallery: example.com)" in result.stderr
    assert len(list((tmp_path / "index").glob("*.npz"))) == 1  # no empty file for the misspelt domain


def test_recognize_warns_when_the_domain_has_no_enrolled_people(env: dict[str, str]) -> None:
    run(env, "enroll", str(KNN / "train"), "--domain", "example.com")
    result = CliRunner().invoke(main, ["recognize", str(KNN / "test"), "--domain", "exmaple.com"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "warning: domain 'exmaple.com' has no enrolled people; every face will be Unknown; "
        "is the domain misspelt? (domains with people: example.com (5))"
    )
    assert "0 recognised" in result.stdout


def test_enroll_into_a_new_domain_says_it_starts_a_gallery(env: dict[str, str], tmp_path: Path) -> None:
    person = tmp_path / "people" / "obama"
    person.mkdir(parents=True)
    (person / "obama.jpg").symlink_to(KNN / "train" / "obama" / "obama.jpg")
    result = CliRunner().invoke(main, ["enroll", str(tmp_path / "people"), "--domain", "example.com"], env=env)
    assert result.exit_code == 0, result.output
    assert "domain 'example.com' has no enrolled people; enrolling starts a new gallery" in result.stderr


def test_every_domain_option_has_help_text() -> None:
    def commands(group: click.Group) -> Iterator[click.Command]:
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    with_domain = [c for c in commands(main) if any(p.name == "domain" for p in c.params)]
    assert {c.name for c in with_domain} >= {"create", "list", "rebuild", "verify", "enroll", "recognize"}
    for command in with_domain:
        option = next(p for p in command.params if p.name == "domain")
        assert isinstance(option, click.Option)
        assert option.help, f"{command.name} --domain has no help"
    usage = CliRunner().invoke(main, ["recognize", "--help"]).output
    assert "--domain DOMAIN" in usage
    assert "the tenant whose enrolled people are matched" in usage


def people_folder(tmp_path: Path, people: dict[str, list[Path]]) -> Path:
    """DIRECTORY/<person name>/<photos>, as `facerec enroll` reads it."""
    root = tmp_path / "people"
    for name, photos in people.items():
        (root / name).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / name / photo.name)
    return root


def test_enroll_reports_each_refused_photo_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    rudd = FACES / "facenet_pytorch" / "data" / "test_images" / "paul_rudd" / "1.jpg"
    folder = people_folder(
        tmp_path,
        {"Barack Obama": [KNN / "train" / "obama" / "obama.jpg", KNN / "train" / "obama" / "obama2.jpg", rudd]},
    )
    code, output = run(env, "enroll", str(folder), "--domain", "example.com")
    assert code == 1
    assert "enrolled 2 face(s) for 1 of 1 people" in output
    assert "Barack Obama/1.jpg: The face in this photo does not look like the person in the other photos" in output
    assert "needed) (--force enrolls it anyway)" in output  # the command's own option, not the API's field
    assert "force=true" not in output


def test_enroll_force_takes_the_photo_that_looks_unlike_the_others(env: dict[str, str], tmp_path: Path) -> None:
    rudd = FACES / "facenet_pytorch" / "data" / "test_images" / "paul_rudd" / "1.jpg"
    folder = people_folder(tmp_path, {"Barack Obama": [KNN / "train" / "obama" / "obama.jpg", rudd]})
    code, output = run(env, "enroll", str(folder), "--domain", "example.com", "--force")
    assert code == 0, output
    assert "enrolled 2 face(s) for 1 of 1 people" in output


def test_enroll_refuses_a_person_who_looks_like_someone_enrolled(env: dict[str, str], tmp_path: Path) -> None:
    first = people_folder(tmp_path / "a", {"Barack Obama": [KNN / "train" / "obama" / "obama.jpg"]})
    assert run(env, "enroll", str(first), "--domain", "example.com")[0] == 0
    second = people_folder(tmp_path / "b", {"President": [KNN / "train" / "obama" / "obama2.jpg"]})
    code, output = run(env, "enroll", str(second), "--domain", "example.com")
    assert code == 1
    assert "President: The face in obama2.jpg looks like 'Barack Obama'" in output


def test_unknown_faces_are_listed_in_groups_and_a_group_named_from_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    photos = tmp_path / "batch"
    photos.mkdir()
    for source in [*(KNN / "train" / "obama").iterdir(), *(KNN / "train" / "biden").iterdir()]:
        shutil.copy(source, photos / source.name)
    # Someone enrolled, so the batch is recognised against a gallery (nobody in it is Obama or Biden).
    assert (
        run(
            env,
            "enroll",
            str(people_folder(tmp_path, {"Alex": [KNN / "train" / "alex_lacamoire" / "img1.jpg"]})),
            "--domain",
            "example.com",
        )[0]
        == 0
    )
    code, output = run(env, "recognize", str(photos), "--domain", "example.com")
    batch_id = next(line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("batch "))
    code, output = run(env, "unknown", "list", "--batch", batch_id, "--domain", "example.com")
    assert code == 0, output
    groups = [line for line in output.splitlines() if line.startswith("group ")]
    assert len(groups) == 2
    obama = next(line for line in groups if "obama" in line)
    assert "2 faces" in obama
    assert "biden" not in obama
    cluster_id = obama.split()[1].rstrip(":")
    code, output = run(
        env, "unknown", "name", cluster_id, "--batch", batch_id, "--name", "Barack Obama", "--domain", "example.com"
    )
    assert code == 0, output
    assert "named 2 faces 'Barack Obama'" in output
    code, output = run(env, "unknown", "list", "--batch", batch_id, "--domain", "example.com")
    assert "1 group of 2 unknown faces" in output
