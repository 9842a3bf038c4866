"""Only an exact batch id names a batch: nothing before, nothing after (not even a newline)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import is_batch_id
from tests.batches.stored import store_batch
from tests.conftest import auth

BATCH_ID = "20231215_143022_1234"


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "0"])
def test_a_batch_id_with_anything_after_it_is_not_a_batch_id(suffix: str) -> None:
    assert is_batch_id(BATCH_ID)
    assert not is_batch_id(BATCH_ID + suffix)


def test_a_batch_id_with_a_trailing_newline_is_404_on_every_batch_route(
    client: httpx.Client, sessions: sessionmaker[Session], tokens: Callable[..., str]
) -> None:
    store_batch(sessions, BATCH_ID, rows=3)
    headers = auth(tokens())
    url = f"/api/batch-photos/logs/{BATCH_ID}%0A"

    for response in (client.get(url, headers=headers), client.get(f"{url}/export", headers=headers)):
        assert response.status_code == 404
        assert response.json()["success"] is False
    assert client.delete(url, headers=headers).status_code == 404
    assert client.get(f"/api/batch-photos/logs/{BATCH_ID}", headers=headers).status_code == 200
