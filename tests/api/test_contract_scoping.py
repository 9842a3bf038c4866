"""Design §3: a token belongs to one domain and everything — people, search, batches — is scoped to it;
another domain's person or batch is a 404, never visible. Person names are unique per domain, not globally.

Two domains, each with one person and one batch, through the live server: every route is called with each
domain's tokens, and a route that forgets the domain shows, finds, changes or deletes the other's data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KNN, auth, photo_files

MINE, THEIRS = "a.example", "b.example"
TRAIN = KNN / "train"


@dataclass(frozen=True, slots=True)
class Tenant:
    """One domain's tokens, its one person (with faces) and its one batch."""

    domain: str
    admin: str
    user: str
    name: str
    person_id: int
    face_ids: list[int]
    batch_id: str


def enroll(client: httpx.Client, token: str, name: str, *photos: Path) -> httpx.Response:
    return client.post("/api/identities", headers=auth(token), data={"name": name}, files=photo_files(*photos))


def make_tenant(
    client: httpx.Client, tokens: Callable[..., str], domain: str, name: str, person: str, probe: str
) -> Tenant:
    admin, user = tokens(domain, "admin"), tokens(domain, "user")
    created = enroll(client, admin, name, *sorted((TRAIN / person).iterdir()))
    assert created.status_code == 201, created.text
    identity = created.json()["identity"]
    faces = [e["face_id"] for e in created.json()["enrolled"]]
    batch = client.post("/api/batch-photos/recognize", headers=auth(user), files=photo_files(KNN / "test" / probe))
    assert batch.status_code == 200, batch.text
    return Tenant(domain, admin, user, name, identity["id"], faces, batch.json()["batch_id"])


@pytest.fixture
def tenants(client: httpx.Client, tokens: Callable[..., str]) -> tuple[Tenant, Tenant]:
    """Both names contain "ob", so a search that forgets the domain finds both people."""
    mine = make_tenant(client, tokens, MINE, "Obama", "obama", "obama1.jpg")
    theirs = make_tenant(client, tokens, THEIRS, "Obadiah Kit", "kit_harington", "johnsnow_test1.jpg")
    return mine, theirs


def get_json(client: httpx.Client, path: str, token: str, **params: Any) -> Any:
    response = client.get(path, headers=auth(token), params=params)
    assert response.status_code == 200, (path, response.text)
    return response.json()


# ----- people ---------------------------------------------------------------------------------------------
def test_the_people_list_shows_and_counts_only_the_callers_domain(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    for tenant in tenants:
        body = get_json(client, "/api/identities", tenant.admin)
        assert body["total"] == 1, tenant.domain
        assert [(i["id"], i["name"]) for i in body["identities"]] == [(tenant.person_id, tenant.name)]


def test_a_name_search_finds_only_people_of_the_callers_domain(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    for tenant, other in ((mine, theirs), (theirs, mine)):
        found = get_json(client, "/api/identities", tenant.admin, q="ob")
        assert (found["total"], [i["name"] for i in found["identities"]]) == (1, [tenant.name])
        nobody = get_json(client, "/api/identities", tenant.admin, q=other.name)
        assert (nobody["total"], nobody["identities"]) == (0, [])


def test_another_domains_person_is_404_on_every_route_and_stays_as_it_was(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    person = f"/api/identities/{mine.person_id}"
    face = f"{person}/faces/{mine.face_ids[0]}"
    before = get_json(client, person, mine.admin)
    attempts = {
        "get": client.get(person, headers=auth(theirs.admin)),
        "thumbnail": client.get(f"{face}/thumbnail", headers=auth(theirs.admin)),
        "rename": client.patch(person, headers=auth(theirs.admin), json={"name": "Renamed"}),
        "add photos": client.post(
            f"{person}/photos", headers=auth(theirs.admin), files=photo_files(KNN / "test" / "obama1.jpg")
        ),
        "delete face": client.delete(face, headers=auth(theirs.admin)),
        "delete person": client.delete(person, headers=auth(theirs.admin)),
    }
    assert {route: r.status_code for route, r in attempts.items()} == dict.fromkeys(attempts, 404)
    assert all(r.json()["success"] is False for r in attempts.values())
    assert get_json(client, person, mine.admin) == before  # same name, same faces
    assert client.get(f"{face}/thumbnail", headers=auth(mine.admin)).status_code == 200


def test_a_face_of_another_domain_is_404_even_under_ones_own_person(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    foreign_face = f"/api/identities/{theirs.person_id}/faces/{mine.face_ids[0]}"
    assert client.get(f"{foreign_face}/thumbnail", headers=auth(theirs.admin)).status_code == 404
    assert client.delete(foreign_face, headers=auth(theirs.admin)).status_code == 404
    faces = get_json(client, f"/api/identities/{mine.person_id}", mine.admin)["identity"]["faces"]
    assert [f["id"] for f in faces] == mine.face_ids


# ----- person names ---------------------------------------------------------------------------------------
def test_the_same_name_may_be_enrolled_in_two_domains(client: httpx.Client, tokens: Callable[..., str]) -> None:
    photos = sorted((TRAIN / "alex_lacamoire").iterdir())
    first = enroll(client, tokens(MINE, "admin"), "Alex", *photos)
    second = enroll(client, tokens(THEIRS, "admin"), "Alex", *photos)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert first.json()["identity"]["id"] != second.json()["identity"]["id"]
    assert second.json()["identity"]["name"] == "Alex"


def test_a_rename_to_a_name_used_only_in_another_domain_succeeds(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    response = client.patch(f"/api/identities/{theirs.person_id}", headers=auth(theirs.admin), json={"name": mine.name})
    assert response.status_code == 200, response.text
    assert response.json()["identity"]["name"] == mine.name


def test_a_name_taken_in_the_same_domain_is_a_409_on_enrollment_and_rename(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, _ = tenants
    again = enroll(client, mine.admin, mine.name, *sorted((TRAIN / "rose_leslie").iterdir()))
    assert again.status_code == 409
    assert again.json()["success"] is False
    other = enroll(client, mine.admin, "Rose", *sorted((TRAIN / "rose_leslie").iterdir())).json()["identity"]
    clash = client.patch(f"/api/identities/{other['id']}", headers=auth(mine.admin), json={"name": mine.name})
    assert clash.status_code == 409


# ----- batches --------------------------------------------------------------------------------------------
def test_the_batch_list_shows_and_counts_only_the_callers_domain(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    for tenant in tenants:
        body = get_json(client, "/api/batch-photos/logs", tenant.user)
        assert body["total"] == 1, tenant.domain
        assert [b["batch_id"] for b in body["batches"]] == [tenant.batch_id]


def test_another_domains_batch_is_404_on_every_route_and_survives(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    mine, theirs = tenants
    log = f"/api/batch-photos/logs/{mine.batch_id}"
    before = get_json(client, log, mine.user)
    attempts = {
        "get": client.get(log, headers=auth(theirs.user)),
        "export": client.get(f"{log}/export", headers=auth(theirs.user)),
        "delete": client.delete(log, headers=auth(theirs.user)),
    }
    assert {route: r.status_code for route, r in attempts.items()} == dict.fromkeys(attempts, 404)
    assert all(r.json()["success"] is False for r in attempts.values())
    assert get_json(client, log, mine.user) == before
    assert client.get(f"{log}/export", headers=auth(mine.user)).status_code == 200


def test_a_batch_log_and_its_csv_name_the_callers_domain(client: httpx.Client, tenants: tuple[Tenant, Tenant]) -> None:
    for tenant in tenants:
        log = get_json(client, f"/api/batch-photos/logs/{tenant.batch_id}", tenant.user)
        assert {entry["domain"] for entry in log["entries"]} == {tenant.domain}
        exported = client.get(f"/api/batch-photos/logs/{tenant.batch_id}/export", headers=auth(tenant.user)).text
        assert [row[2] for row in csv.reader(io.StringIO(exported))][1:] == [tenant.domain]


def test_a_batch_is_matched_only_against_the_callers_people(
    client: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    for tenant in tenants:
        log = get_json(client, f"/api/batch-photos/logs/{tenant.batch_id}", tenant.user)
        assert [m["person"] for m in log["entries"][0]["top_3_matches"]] == [tenant.name]
