"""Every face in a photo counts, on the web page: boxes and names over the uploaded photos, each face's crop with
its matches on the batch page, corrections by an admin, the per-face CSV, and where a person appears."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.conftest import KNN, LiveServer, auth, enroll_knn_train, photo_files
from tests.web.test_page import sign_in, upload

GROUP = KNN / "test" / "kit_with_rose.jpg"  # kit_harington (right, larger) and rose_leslie (left)
DUO = KNN / "test" / "obama_and_biden.jpg"  # obama, biden and a small face nobody enrolled
SOLO = KNN / "test" / "obama1.jpg"
SHOTS = Path("/tmp/facerec-shots")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def named(name: str) -> re.Pattern[str]:
    """A face label: the name and a confidence."""
    return re.compile(rf"^{re.escape(name)} \d+(\.\d)?%$")


def figure(page: Page, filename: str) -> Locator:
    return page.locator(f"#annotated figure[data-file='{filename}']")


def boxes_on_image(fig: Locator) -> list[dict[str, Any]]:
    """Each face box of an annotated photo as fractions of the displayed image, with its label."""
    return fig.evaluate(
        """(fig) => {
            const img = fig.querySelector('img').getBoundingClientRect();
            return [...fig.querySelectorAll('.face-box')].map((box) => {
                const r = box.getBoundingClientRect();
                return {
                    label: box.textContent,
                    person: box.dataset.person,
                    left: (r.left - img.left) / img.width, top: (r.top - img.top) / img.height,
                    right: (r.right - img.left) / img.width, bottom: (r.bottom - img.top) / img.height,
                    labelVisible: (() => { const l = box.querySelector('.face-label').getBoundingClientRect();
                                           return l.width > 0 && l.height > 0; })(),
                };
            });
        }"""
    )


def wait_for_photos_placed(page: Page) -> None:
    """Every uploaded photo has loaded and its face boxes are placed over it (done on the image's load event,
    which can come after the names are already on the page)."""
    expect(page.locator("#annotated .photo-frame.pending")).to_have_count(0)


def wait_for_crops(page: Page, selector: str) -> None:
    """Every crop under ``selector`` has arrived (they are fetched with the token, as blobs)."""
    page.wait_for_function(
        """(selector) => {
            const crops = [...document.querySelectorAll(selector)];
            return crops.length > 0 && crops.every((img) => img.complete && img.naturalWidth === 112);
        }""",
        arg=selector,
    )


def batch_via_api(client: httpx.Client, token: str, *paths: Path) -> dict[str, Any]:
    response = client.post("/api/batch-photos/recognize", headers=auth(token), files=photo_files(*paths))
    assert response.status_code == 200, response.text
    return client.get(response.json()["log_url"], headers=auth(token)).json()


def test_every_face_of_an_uploaded_photo_gets_a_box_with_a_name(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    upload(page, GROUP, DUO)

    group = figure(page, "kit_with_rose.jpg")
    expect(group.locator(".face-label")).to_have_text([named("kit_harington"), named("rose_leslie")])
    expect(group.get_by_role("img", name="kit_with_rose.jpg")).to_be_visible()
    expect(group.get_by_role("list", name="Faces in kit_with_rose.jpg")).to_be_attached()
    duo = figure(page, "obama_and_biden.jpg")
    expect(duo.locator(".face-label")).to_have_text([named("obama"), named("biden"), "Unknown"])
    expect(duo.locator(".face-box.unknown")).to_have_count(1)
    wait_for_photos_placed(page)

    # The boxes sit where the API found the faces, scaled from the photo's pixels to its displayed size.
    batch_id = page.locator("#results h2").first.inner_text().removeprefix("Batch ")
    log = client.get(f"/api/batch-photos/logs/{batch_id}", headers=auth(admin)).json()
    for entry, path in zip(log["entries"], (GROUP, DUO), strict=True):
        width, height = Image.open(path).size
        shown = boxes_on_image(figure(page, entry["filename"]))
        assert len(shown) == len(entry["faces"])
        for face, box in zip(entry["faces"], shown, strict=True):
            x1, y1, x2, y2 = face["box"]
            assert box["person"] == face["person"]
            assert box["labelVisible"]
            expected = (x1 / width, y1 / height, x2 / width, y2 / height)
            actual = (box["left"], box["top"], box["right"], box["bottom"])
            assert all(abs(a - e) < 0.02 for a, e in zip(actual, expected, strict=True)), (face, box)
    kit, rose = boxes_on_image(group)
    assert kit["left"] > rose["right"] - 0.05  # kit stands on the right of the photo, rose on the left

    # The table says who is in each photo, not only who the largest face is.
    everyone = page.locator("#entries td.people")
    expect(everyone.nth(0).locator(".chip")).to_have_text([named("kit_harington"), named("rose_leslie")])
    expect(everyone.nth(1).locator(".chip")).to_have_text([named("obama"), named("biden"), "1 unknown"])
    expect(page.locator("#summary")).to_contain_text("kit_harington, rose_leslie, obama, biden")
    shot(page, "results-boxes")


def test_boxes_follow_the_exif_orientation_of_a_rotated_photo(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str, tmp_path: Path
) -> None:
    # The same photo stored sideways, with an EXIF tag telling viewers to turn it upright (as phones save them).
    sideways = tmp_path / "kit_with_rose_sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    Image.open(GROUP).transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif, quality=95)
    enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    upload(page, GROUP, sideways)

    turned = figure(page, sideways.name)
    expect(turned.locator(".face-label")).to_have_text([named("kit_harington"), named("rose_leslie")])
    wait_for_photos_placed(page)
    natural = turned.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert natural == list(Image.open(GROUP).size)  # the browser shows it upright, as the API measured it
    upright = boxes_on_image(figure(page, GROUP.name))
    rotated = boxes_on_image(turned)
    for a, b in zip(upright, rotated, strict=True):
        assert a["person"] == b["person"]
        assert all(abs(a[side] - b[side]) < 0.02 for side in ("left", "top", "right", "bottom")), (a, b)
    shot(page, "results-exif-rotated")


def test_the_batch_page_shows_every_face_with_its_crop_name_confidence_and_top_3(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    upload(page, GROUP, DUO)
    page.get_by_role("link", name="Open batch").click()

    group = page.locator("#entries tbody tr").nth(0)
    cards = group.locator(".face-card")
    expect(cards).to_have_count(2)
    expect(cards.locator(".face-name")).to_have_text(["kit_harington", "rose_leslie"])
    expect(cards.locator(".face-confidence")).to_have_text([re.compile(r"^\d+(\.\d)?%$")] * 2)
    expect(
        cards.nth(0).get_by_role("list", name="Top matches of face 1 of kit_with_rose.jpg").locator("li")
    ).to_have_count(3)
    expect(cards.nth(1).locator("ol.matches li").first).to_contain_text("rose_leslie")
    expect(group.get_by_role("img", name="Face 2 of kit_with_rose.jpg")).to_be_visible()
    expect(group.locator("td.people .chip")).to_have_text([named("kit_harington"), named("rose_leslie")])
    duo = page.locator("#entries tbody tr").nth(1)
    expect(duo.locator(".face-card .face-name")).to_have_text(["obama", "biden", "Unknown"])
    expect(duo.locator("td.people .chip")).to_have_text([named("obama"), named("biden"), "1 unknown"])
    wait_for_crops(page, "#entries img.crop")
    shot(page, "batch-detail")

    page.select_option("#person-filter", "rose_leslie")
    expect(page.locator("#entries tbody tr")).to_have_count(1)
    expect(page.locator("#entries td.file")).to_have_text(["kit_with_rose.jpg"])
    page.select_option("#person-filter", "")
    expect(page.locator("#entries tbody tr")).to_have_count(2)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download per-face CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith("_faces.csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [(row["Filename"], row["Person"]) for row in rows] == [
        ("kit_with_rose.jpg", "kit_harington"),
        ("kit_with_rose.jpg", "rose_leslie"),
        ("obama_and_biden.jpg", "obama"),
        ("obama_and_biden.jpg", "biden"),
        ("obama_and_biden.jpg", "Unknown"),
    ]


def test_an_admin_corrects_a_face_and_the_page_follows(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    ids = enroll_knn_train(client, admin)
    sign_in(page, live_server, admin)
    upload(page, GROUP, DUO)
    page.get_by_role("link", name="Open batch").click()
    group = page.locator("#entries tbody tr").nth(0)
    duo = page.locator("#entries tbody tr").nth(1)
    expect(group.locator(".face-card")).to_have_count(2)

    # rose_leslie's face is said to be nobody.
    page.get_by_role("button", name="Correct face 2 of kit_with_rose.jpg").click()
    dialog = page.get_by_role("dialog", name="Who is face 2 of kit_with_rose.jpg?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Person")).to_have_value(str(ids["rose_leslie"]))
    dialog.get_by_label("Person").select_option(label="Unknown (nobody)")
    expect(dialog.get_by_label("Also add this face to their gallery")).to_be_disabled()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#batch-status")).to_have_text("Face 2 of kit_with_rose.jpg is now Unknown.")
    expect(group.locator(".face-card .face-name")).to_have_text(["kit_harington", "Unknown"])
    expect(group.locator(".face-card").nth(1).locator(".badge")).to_have_text("corrected")
    expect(group.locator("td.people .chip")).to_have_text([named("kit_harington"), "1 unknown"])
    expect(page.locator("#summary")).not_to_contain_text("rose_leslie")
    expect(page.get_by_role("button", name="Correct face 2 of kit_with_rose.jpg")).to_be_focused()

    # The face nobody was recognised on is alex_lacamoire's, and joins his gallery.
    before = client.get(f"/api/identities/{ids['alex_lacamoire']}", headers=auth(admin)).json()["identity"]
    page.get_by_role("button", name="Correct face 3 of obama_and_biden.jpg").click()
    dialog = page.get_by_role("dialog", name="Who is face 3 of obama_and_biden.jpg?")
    dialog.get_by_label("Person").select_option(label="alex_lacamoire")
    dialog.get_by_label("Also add this face to their gallery").check()
    wait_for_crops(page, "dialog img.crop")
    shot(page, "correct-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#batch-status")).to_contain_text(
        "Face 3 of obama_and_biden.jpg is now alex_lacamoire, and was added to their gallery."
    )
    expect(duo.locator(".face-card .face-name")).to_have_text(["obama", "biden", "alex_lacamoire"])
    chips = duo.locator("td.people .chip")
    expect(chips.filter(has_text="alex_lacamoire")).to_have_count(1)  # best first: his place depends on confidence
    assert sorted(text.split()[0] for text in chips.all_inner_texts()) == ["alex_lacamoire", "biden", "obama"]
    expect(page.locator("#summary")).to_contain_text("alex_lacamoire")
    after = client.get(f"/api/identities/{ids['alex_lacamoire']}", headers=auth(admin)).json()["identity"]
    assert after["face_count"] == before["face_count"] + 1
    shot(page, "batch-corrected")

    # The corrections are what the batch now says, after a reload too.
    page.reload()
    expect(page.locator("#entries tbody tr").nth(0).locator(".face-card .face-name")).to_have_text(
        ["kit_harington", "Unknown"]
    )


def test_a_correction_the_api_refuses_is_shown_in_the_dialog(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    ids = enroll_knn_train(client, admin)
    log = batch_via_api(client, admin, GROUP)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    page.get_by_role("button", name="Correct face 1 of kit_with_rose.jpg").click()
    dialog = page.get_by_role("dialog")
    # Someone deletes the person meanwhile: the page's list is out of date, the API says so.
    assert client.delete(f"/api/identities/{ids['obama']}", headers=auth(admin)).status_code == 200
    dialog.get_by_label("Person").select_option(label="obama")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("not found")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#entries .face-card .face-name")).to_have_text(["kit_harington", "rose_leslie"])


def test_a_user_sees_every_face_but_cannot_correct(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str, tokens: Callable[..., str]
) -> None:
    enroll_knn_train(client, admin)
    user = tokens("example.com", "user")
    log = batch_via_api(client, user, GROUP)
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    expect(page.locator("#entries .face-card .face-name")).to_have_text(["kit_harington", "rose_leslie"])
    wait_for_crops(page, "#entries img.crop")
    expect(page.get_by_role("button", name=re.compile("^Correct"))).to_have_count(0)


def test_the_people_page_links_to_where_each_person_appears(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    enroll_knn_train(client, admin)
    with_rose = batch_via_api(client, admin, GROUP)
    batch_via_api(client, admin, SOLO)  # a later batch without her
    rose_face = with_rose["entries"][0]["faces"][1]
    assert rose_face["person"] == "rose_leslie"
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="People").click()
    expect(page.locator("#people img.thumb")).to_have_count(5)
    shot(page, "people")
    page.get_by_role("link", name="Appearances of rose_leslie").click()

    expect(page.get_by_role("heading", name="Appearances of rose_leslie")).to_be_visible()
    cards = page.get_by_role("list", name="Appearances of rose_leslie").get_by_role("listitem")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("kit_with_rose.jpg")
    expect(cards.first).to_contain_text(f"{rose_face['confidence']}%")
    expect(cards.first.get_by_role("link")).to_have_text(f"Batch {with_rose['batch_id']}")
    expect(cards.first.get_by_role("img", name="rose_leslie in kit_with_rose.jpg")).to_be_visible()
    wait_for_crops(page, "#appearances img.crop")
    shot(page, "appearances")

    cards.first.get_by_role("link", name=f"Batch {with_rose['batch_id']}").click()
    expect(page.get_by_role("heading", name=f"Batch {with_rose['batch_id']}")).to_be_visible()
    expect(page.locator(f"#face-{rose_face['face_id']}")).to_have_class(re.compile(r"\bhighlight\b"))

    page.go_back()
    page.get_by_role("link", name="Batches with rose_leslie").click()
    expect(page.locator("#batches tbody tr")).to_have_count(1)
    expect(page.locator("#batch-count")).to_have_text("1 batch with rose_leslie")
    expect(page.get_by_label("Batches with")).to_have_value("rose_leslie")
    shot(page, "batches-with-person")

    page.get_by_role("link", name="People").click()
    page.get_by_role("link", name="Appearances of biden").click()
    expect(page.get_by_text("biden has not been recognised in any batch yet.")).to_be_visible()


def test_the_faces_fit_a_phone(page: Page, live_server: LiveServer, client: httpx.Client, admin: str) -> None:
    enroll_knn_train(client, admin)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, admin)
    upload(page, GROUP, DUO)
    expect(figure(page, "obama_and_biden.jpg").locator(".face-label")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-results")
    page.get_by_role("link", name="Open batch").click()
    expect(page.locator("#entries .face-card")).to_have_count(5)
    wait_for_crops(page, "#entries img.crop")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-batch")
