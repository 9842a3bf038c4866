"""``GET /api/identities?q=`` is a case-insensitive search for names *containing* q: the characters SQL LIKE
treats as wildcards (``%``, ``_``) and its escape character (``\\``) match only themselves."""

from __future__ import annotations

import httpx

from tests.conftest import auth, enroll_knn_train


def names_found(client: httpx.Client, token: str, q: str) -> list[str]:
    response = client.get("/api/identities", headers=auth(token), params={"q": q})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["identities"])
    return [identity["name"] for identity in body["identities"]]


def test_like_wildcards_and_the_escape_character_in_q_match_only_themselves(client: httpx.Client, admin: str) -> None:
    ids = enroll_knn_train(client, admin)  # alex_lacamoire, biden, kit_harington, obama, rose_leslie
    for person, name in (("obama", "Obama 100%"), ("biden", "Biden\\Joe")):
        renamed = client.patch(f"/api/identities/{ids[person]}", headers=auth(admin), json={"name": name})
        assert renamed.status_code == 200, renamed.text

    found = {q: names_found(client, admin, q) for q in ("%", "_", "\\", "0%", "i_e")}
    assert found == {
        "%": ["Obama 100%"],
        "_": ["alex_lacamoire", "kit_harington", "rose_leslie"],
        "\\": ["Biden\\Joe"],
        "0%": ["Obama 100%"],
        "i_e": [],  # as a wildcard it would match "Biden"
    }
