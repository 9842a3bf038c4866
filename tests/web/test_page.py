"""The web page, used as a person would: sign in, recognise, review batches, manage people."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import KNN, LiveServer, auth, enroll_knn_train, photo_files
from tests.web.conftest import PageProblems

THREE = [KNN / "test" / name for name in ("obama1.jpg", "johnsnow_test1.jpg", "alex_lacamoire1.jpg")]


def sign_in(page: Page, server: LiveServer, token: str, *, remember: bool = False) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Token").fill(token)
    if remember:
        page.get_by_label("Remember on this device").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Recognise")).to_be_visible()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def upload(page: Page, *paths: Path) -> None:
    page.set_input_files("#photos", [str(p) for p in paths])
    page.get_by_role("button", name="Upload & recognise").click()
    expect(page.locator("#entries")).to_be_visible()


def test_a_wrong_token_is_refused_plainly(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    page.goto(live_server.url + "/")
    page.get_by_label("Token").fill("frk_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed: Invalid or revoked API token")
    expect(page.locator("#nav")).to_be_hidden()
    shot(page, tmp_path, "wrong-token")


def open_new_tab(page: Page, server: LiveServer) -> Page:
    """Another tab of the same browser profile: it shares localStorage, not sessionStorage."""
    tab = page.context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(server.url + "/")
    return tab


def test_the_sign_in_page_says_where_a_token_comes_from(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    hint = page.locator("#token-hint")
    expect(hint).to_contain_text("facerec token create --domain D --admin")
    expect(hint).to_contain_text("make run keeps an admin token for domain localhost in storage/admin-token.txt")


def test_remember_on_this_device_is_off_by_default(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    expect(page.get_by_label("Remember on this device")).not_to_be_checked()


def test_a_remembered_token_is_still_signed_in_in_a_new_tab(page: Page, live_server: LiveServer, admin: str) -> None:
    sign_in(page, live_server, admin, remember=True)
    tab = open_new_tab(page, live_server)
    expect(tab.get_by_role("heading", name="Recognise")).to_be_visible()
    expect(tab.locator("#who")).to_have_text("example.com · admin")


def test_a_token_not_remembered_is_asked_for_again_in_a_new_tab(
    page: Page, live_server: LiveServer, admin: str
) -> None:
    sign_in(page, live_server, admin)
    tab = open_new_tab(page, live_server)
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible()
    expect(tab.locator("#nav")).to_be_hidden()


def test_signing_out_forgets_a_remembered_token(page: Page, live_server: LiveServer, admin: str) -> None:
    sign_in(page, live_server, admin, remember=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    stored = page.evaluate("[localStorage.getItem('facerec.token'), sessionStorage.getItem('facerec.token')]")
    assert stored == [None, None]
    tab = open_new_tab(page, live_server)
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible()


def test_recognise_review_export_and_delete_a_batch(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str, tmp_path: Path
) -> None:
    enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    upload(page, *THREE)
    people = page.locator("#entries td.person")
    expect(people).to_have_text(["obama", "kit_harington", "alex_lacamoire"])
    expect(page.locator("#summary")).to_contain_text("100%")
    expect(page.locator("#entries img.preview")).to_have_count(3)
    expect(page.locator("#results")).not_to_contain_text("null")
    shot(page, tmp_path, "results")

    page.get_by_role("link", name="Open batch").click()
    expect(page.locator("#entries td.person")).to_have_count(3)
    page.get_by_role("link", name="Batches").click()
    rows = page.locator("#batches tbody tr")
    expect(rows).to_have_count(1)
    shot(page, tmp_path, "batches")

    with page.expect_download() as download_info:
        rows.first.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text(encoding="utf-8")
    names = [row["Primary Person"] for row in csv.DictReader(io.StringIO(content))]
    assert names == ["obama", "kit_harington", "alex_lacamoire"]

    page.once("dialog", lambda dialog: dialog.accept())
    rows.first.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No batches yet.")).to_be_visible()
    assert client.get("/api/batch-photos/logs", headers=auth(admin)).json()["total"] == 0


def test_the_batch_detail_filters_recognised_and_unknown(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    enroll_knn_train(client, admin)
    stranger = KNN.parents[2] / "facenet_pytorch" / "data" / "test_images" / "paul_rudd" / "1.jpg"
    sign_in(page, live_server, admin)
    upload(page, THREE[0], stranger)
    page.get_by_role("link", name="Open batch").click()
    expect(page.locator("#entries tbody tr")).to_have_count(2)
    page.select_option("#filter", "unknown")
    expect(page.locator("#entries td.person")).to_have_text(["Unknown"])
    page.select_option("#filter", "recognized")
    expect(page.locator("#entries td.person")).to_have_text(["obama"])


def test_rejected_files_are_listed_with_their_reasons(
    page: Page, live_server: LiveServer, admin: str, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    sign_in(page, live_server, admin)
    upload(page, THREE[0], notes)
    expect(page.locator("#rejected")).to_contain_text("notes.jpg: Unsupported or unrecognised image format")


def test_an_upload_with_no_usable_photo_shows_the_error(
    page: Page, live_server: LiveServer, admin: str, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    sign_in(page, live_server, admin)
    page.set_input_files("#photos", [str(notes)])
    page.get_by_role("button", name="Upload & recognise").click()
    expect(page.get_by_role("alert")).to_contain_text("None of the uploaded files is a usable photo")
    expect(page.locator("#rejected")).to_contain_text("notes.jpg")


def test_enroll_a_person_from_the_people_page_and_see_them_recognised(
    page: Page, live_server: LiveServer, admin: str, tmp_path: Path
) -> None:
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="People").click()
    page.get_by_label("Name", exact=True).fill("Barack Obama")
    page.set_input_files("#new-photos", [str(p) for p in sorted((KNN / "train" / "obama").iterdir())])
    page.get_by_role("button", name="Enroll").click()
    expect(page.locator("#people-feedback")).to_contain_text("Enrolled Barack Obama.")
    expect(page.locator("#people .person-name")).to_have_text(["Barack Obama"])
    expect(page.locator("#people img.thumb")).to_have_count(1)
    shot(page, tmp_path, "people")

    page.get_by_role("link", name="Recognise").click()
    upload(page, THREE[0])
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama"])


def test_rename_and_delete_faces_and_people_from_the_person_page(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    ids = enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/people/{ids['obama']}")
    page.get_by_label("Name").fill("President Obama")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="President Obama")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete face").first.click()
    expect(page.get_by_role("heading", name="1 face")).to_be_visible()

    page.get_by_role("link", name="← People").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete President Obama").click()
    expect(page.locator("#people .person-name")).to_have_count(4)


def test_a_user_token_sees_no_admin_actions(page: Page, live_server: LiveServer, tokens: Callable[..., str]) -> None:
    sign_in(page, live_server, tokens("example.com", "user"))
    expect(page.get_by_role("link", name="People")).to_be_hidden()
    page.goto(live_server.url + "/#/people")
    expect(page.get_by_text("Managing people needs an admin token.")).to_be_visible()
    expect(page.locator("#enroll-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)


def test_names_and_file_names_with_markup_show_as_text(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str, problems: PageProblems
) -> None:
    script_name = "<script>alert(1)</script>"
    response = client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": script_name},
        files=photo_files(*sorted((KNN / "train" / "obama").iterdir())),
    )
    assert response.status_code == 201
    seen: list[str] = []
    page.on("dialog", lambda dialog: (seen.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server, admin)
    tricky = THREE[0].read_bytes()
    page.set_input_files(
        "#photos", files=[{"name": "<img src=x onerror=alert(2)>.jpg", "mimeType": "image/jpeg", "buffer": tricky}]
    )
    page.get_by_role("button", name="Upload & recognise").click()
    expect(page.locator("#entries td.person")).to_have_text([script_name])
    expect(page.locator("#entries tbody td").nth(1)).to_have_text("<img src=x onerror=alert(2)>.jpg")
    page.get_by_role("link", name="People").click()
    expect(page.locator("#people .person-name")).to_have_text([script_name])
    assert seen == []


def test_the_page_fits_a_phone_and_is_keyboard_reachable(
    page: Page, live_server: LiveServer, admin: str, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, admin)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert "photos" in focused
    assert "sign-out" in focused
    shot(page, tmp_path, "phone")
