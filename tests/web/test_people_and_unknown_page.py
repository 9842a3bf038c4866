"""The People page and the batch page's unknown people, used as a person would: enrolling from a group photo by
clicking the face, the API's conflicts shown by the form with a way on, plurals, deleting a person, and naming
or dismissing groups of faces nobody was recognised on."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from service.recognition.faces import FaceModel
from service.settings import Settings
from tests.conftest import KNN, LiveServer, auth, photo_files
from tests.web.test_faces_page import batch_via_api, shot, wait_for_crops
from tests.web.test_page import sign_in, upload

DUO = KNN / "test" / "obama_and_biden.jpg"  # obama (largest), biden and a small face
SOLO = KNN / "test" / "obama1.jpg"
OBAMA = [KNN / "train" / "obama" / "obama.jpg", KNN / "train" / "obama" / "obama2.jpg"]
BIDEN = [KNN / "train" / "biden" / "biden.jpg", KNN / "train" / "biden" / "biden2.jpg"]


def enroll(client: httpx.Client, token: str, name: str, *photos: Path) -> dict[str, Any]:
    response = client.post("/api/identities", headers=auth(token), data={"name": name}, files=photo_files(*photos))
    assert response.status_code == 201, response.text
    identity: dict[str, Any] = response.json()["identity"]
    return identity


def open_people(page: Page) -> None:
    page.get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()


def enroll_on_page(page: Page, name: str, *photos: Path) -> None:
    page.locator("#enroll-form").get_by_label("Name", exact=True).fill(name)
    page.set_input_files("#new-photos", [str(p) for p in photos])
    page.get_by_role("button", name="Enroll").click()


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def cluster_with(panel: Locator, filename: str) -> Locator:
    """The group of unknown faces that holds a face of ``filename``."""
    crop = panel.page.get_by_role("img", name=re.compile(f" of {re.escape(filename)}$"))
    return panel.locator("li.cluster").filter(has=crop)


def test_enrolling_from_a_group_photo_asks_which_face_and_enrolls_the_one_clicked(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    sign_in(page, live_server, admin)
    open_people(page)
    enroll_on_page(page, "Barack Obama", DUO)

    chooser = page.locator("#enroll-form #choose-face")
    expect(chooser.get_by_role("heading")).to_have_text("obama_and_biden.jpg holds 3 faces: which one is Barack Obama?")
    expect(chooser.get_by_role("heading")).to_be_focused()
    faces = chooser.get_by_role("list", name="Faces in obama_and_biden.jpg").get_by_role("button")
    expect(faces).to_have_count(3)
    expect(faces).to_have_text(["Face 1", "Face 2", "Face 3"])
    expect(chooser.locator(".photo-frame")).not_to_have_class(re.compile(r"\bpending\b"))

    # The boxes sit where the API found the faces, scaled to the photo as shown; each is a button the keyboard reaches.
    asked = client.post("/api/identities", headers=auth(admin), data={"name": "x"}, files=photo_files(DUO))
    assert asked.status_code == 400
    width, height = Image.open(DUO).size
    photo = box(chooser.get_by_role("img", name="obama_and_biden.jpg, 3 faces"))
    for face, button in zip(asked.json()["faces"], faces.all(), strict=True):
        x1, y1, x2, y2 = face["box"]
        shown = box(button)
        expected = (x1 / width, y1 / height, x2 / width, y2 / height)
        actual = (
            (shown["x"] - photo["x"]) / photo["width"],
            (shown["y"] - photo["y"]) / photo["height"],
            (shown["x"] + shown["width"] - photo["x"]) / photo["width"],
            (shown["y"] + shown["height"] - photo["y"]) / photo["height"],
        )
        assert all(abs(a - e) < 0.02 for a, e in zip(actual, expected, strict=True)), (face, shown)
    page.keyboard.press("Tab")
    expect(faces.nth(0)).to_be_focused()
    page.keyboard.press("Tab")
    expect(faces.nth(1)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(faces.nth(0)).to_be_focused()
    shot(page, "enroll-choose-face")

    faces.nth(0).click()
    feedback = page.locator("#people-feedback")
    expect(feedback).to_contain_text("Enrolled Barack Obama.")
    expect(chooser).to_have_count(0)
    expect(page.locator("#people .person-name")).to_have_text(["Barack Obama"])
    expect(page.locator("#people .face-count")).to_have_text(["1 face"])
    shot(page, "enroll-chosen")

    page.get_by_role("link", name="Recognise").click()
    upload(page, SOLO)
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama"])


def test_the_faces_of_a_group_photo_can_be_chosen_by_keyboard_alone(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/people")
    enroll_on_page(page, "Joe Biden", DUO)
    chooser = page.locator("#choose-face")
    expect(chooser.locator(".photo-frame")).not_to_have_class(re.compile(r"\bpending\b"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-enroll-choose-face")
    chooser.get_by_role("heading").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(chooser.get_by_role("button", name="Face 2")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#people-feedback")).to_contain_text("Enrolled Joe Biden.")
    biden = client.get("/api/identities", headers=auth(admin)).json()["identities"]
    assert [(p["name"], p["face_count"]) for p in biden] == [("Joe Biden", 1)]
    # Face 2 was Biden's: his own photos now match him.
    log = batch_via_api(client, admin, BIDEN[0])
    assert log["entries"][0]["primary_result"]["person"] == "Joe Biden"


def test_conflicts_are_shown_by_the_form_with_the_person_and_a_way_on(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    obama = enroll(client, admin, "Barack Obama", OBAMA[0])
    enroll(client, admin, "rose_leslie", KNN / "train" / "rose_leslie" / "img1.jpg")
    sign_in(page, live_server, admin)
    open_people(page)

    # The same name in another case and spacing: refused, said next to the form, with the photos' way on.
    enroll_on_page(page, "barack  OBAMA", OBAMA[1])
    form = page.locator("#enroll-form")
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("A person named Barack Obama already exists.")
    form_box, alert_box = box(form), box(alert)
    assert form_box["y"] <= alert_box["y"] <= form_box["y"] + form_box["height"]
    expect(alert.get_by_role("link", name="Open Barack Obama")).to_have_attribute("href", f"#/people/{obama['id']}")
    shot(page, "enroll-name-taken")
    alert.get_by_role("button", name="Add the photos to Barack Obama").click()
    expect(form.locator("#people-feedback")).to_contain_text("Added 1 photo to Barack Obama.")
    expect(page.locator("#people tr", has_text="Barack Obama").locator(".face-count")).to_have_text("2 faces")

    # A new name for a face that is someone enrolled: refused unless told to go ahead.
    enroll_on_page(page, "Someone Else", SOLO)
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"This face looks like Barack Obama \(confidence \d+(\.\d)?%\)"))
    shot(page, "enroll-looks-like")
    alert.get_by_role("button", name="Enroll anyway").click()
    expect(form.locator("#people-feedback")).to_contain_text("Enrolled Someone Else.")
    expect(page.locator("#people .person-name")).to_contain_text(["Barack Obama", "rose_leslie", "Someone Else"])

    # The link opens the person the name belongs to.
    enroll_on_page(page, "BARACK OBAMA", SOLO)
    form.get_by_role("alert").get_by_role("link", name="Open Barack Obama").click()
    expect(page.get_by_role("heading", name="Barack Obama")).to_be_visible()
    expect(page.locator("#face-count")).to_have_text("2 faces")

    # Renaming to a taken name says whose it is, by the rename form.
    page.get_by_label("Name").fill("someone  else")
    page.get_by_role("button", name="Rename").click()
    alert = page.locator("#person-status").get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^A person named Someone Else already exists: choose another name\."))
    expect(alert.get_by_role("link", name="Open Someone Else")).to_be_visible()


def test_counts_are_said_in_words_and_an_empty_search_says_no_one_matches(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    enroll(client, admin, "obama", OBAMA[0])
    sign_in(page, live_server, admin)
    page.set_input_files("#photos", [str(SOLO)])
    expect(page.locator("#chosen")).to_have_text("1 photo chosen.")
    page.get_by_role("button", name="Upload & recognise").click()
    expect(page.locator("#summary .stat").first).to_have_text("1photo")
    expect(page.locator("#summary .stat").last).to_have_text("obamaperson")
    page.get_by_role("link", name="Batches").click()
    expect(page.locator("#batch-count")).to_have_text("1 batch")

    open_people(page)
    expect(page.locator("#people-count")).to_have_text("1 person")
    expect(page.locator("#people .face-count")).to_have_text(["1 face"])
    page.get_by_label("Search by name").fill("nobody-like-this")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#people-count")).to_have_text("No one matches “nobody-like-this”.")
    expect(page.locator("#people table")).to_have_count(0)
    shot(page, "people-no-match")
    page.get_by_role("link", name="Everyone").click()
    expect(page.locator("#people-count")).to_have_text("1 person")

    enroll(client, admin, "biden", *BIDEN)
    page.reload()
    expect(page.locator("#people-count")).to_have_text("2 people")
    expect(page.locator("#people .face-count")).to_have_text(["2 faces", "1 face"])
    page.get_by_label("Search by name").fill("bid")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#people-count")).to_have_text("1 person matching “bid”")
    page.get_by_role("link", name="biden", exact=True).click()
    expect(page.locator("#face-count")).to_have_text("2 faces")
    page.get_by_role("link", name="← People").click()
    page.get_by_role("link", name="Appearances of obama").click()
    expect(page.locator("#appearance-count")).to_have_text("1 appearance in batches, newest first")
    shot(page, "plurals")


def test_a_person_is_deleted_from_their_page_and_offered_for_deletion_with_their_last_face(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    obama = enroll(client, admin, "Barack Obama", *OBAMA)
    biden = enroll(client, admin, "Joe Biden", BIDEN[0])
    sign_in(page, live_server, admin)

    page.goto(f"{live_server.url}/#/people/{obama['id']}")
    expect(page.locator("#face-count")).to_have_text("2 faces")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete person").click()
    expect(page.get_by_role("heading", name="Barack Obama")).to_be_visible()  # cancelled: nothing happens
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete person").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    assert messages == ["Delete Barack Obama and all their faces?"]
    expect(page.get_by_role("status").filter(has_text="Deleted Barack Obama.")).to_be_visible()
    expect(page.locator("#people .person-name")).to_have_text(["Joe Biden"])
    assert client.get(f"/api/identities/{obama['id']}", headers=auth(admin)).status_code == 404

    # Removing the last face leaves a person nobody can be recognised as: deleting them is offered.
    page.get_by_role("link", name="Joe Biden", exact=True).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete face").click()
    offer = page.locator("#person-status").get_by_role("alert")
    expect(offer).to_have_text(re.compile(r"^That was Joe Biden's last face\. Delete Joe Biden too\?"))
    expect(page.locator("#face-count")).to_have_text("0 faces")
    expect(offer.get_by_role("button", name="Delete Joe Biden")).to_be_focused()
    shot(page, "person-last-face")
    offer.get_by_role("button", name="Delete Joe Biden").click()
    expect(page.get_by_text("Deleted Joe Biden.")).to_be_visible()
    expect(page.locator("#people-count")).to_have_text("Nobody enrolled yet.")
    assert client.get(f"/api/identities/{biden['id']}", headers=auth(admin)).status_code == 404


def test_keeping_a_person_without_faces(page: Page, live_server: LiveServer, client: httpx.Client, admin: str) -> None:
    biden = enroll(client, admin, "Joe Biden", BIDEN[0])
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/people/{biden['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete face").click()
    page.get_by_role("button", name="Keep Joe Biden").click()
    expect(page.locator("#person-status")).to_be_empty()
    expect(page.get_by_text("No faces: nobody is recognised as Joe Biden until photos are added.")).to_be_visible()
    assert client.get(f"/api/identities/{biden['id']}", headers=auth(admin)).json()["identity"]["face_count"] == 0


def test_unknown_people_of_a_batch_are_grouped_named_and_dismissed(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    sign_in(page, live_server, admin)
    upload(page, *OBAMA, *BIDEN)
    expect(page.locator("#entries td.person")).to_have_text(["Unknown"] * 4)
    page.get_by_role("link", name="Open batch").click()

    panel = page.locator("#unknown-people")
    expect(panel.get_by_role("heading", name="Unknown people")).to_be_visible()
    groups = panel.locator("li.cluster")
    expect(groups).to_have_count(2)
    expect(groups.locator(".cluster-title")).to_have_text(["Unknown person 1 · 2 faces", "Unknown person 2 · 2 faces"])
    obama, biden = cluster_with(panel, "obama.jpg"), cluster_with(panel, "biden.jpg")
    expect(obama.locator(".cluster-face .filename")).to_have_text(["obama.jpg", "obama2.jpg"])
    expect(biden.locator(".cluster-face .filename")).to_have_text(["biden.jpg", "biden2.jpg"])
    wait_for_crops(page, "#unknown-people img.crop")
    expect(page.locator("#people-names option")).to_have_count(0)  # nobody enrolled to suggest
    shot(page, "unknown-panel")

    obama.get_by_label("Who is this?").fill("Barack Obama")
    obama.get_by_role("button", name="Name", exact=True).click()
    status = page.locator("#unknown-status")
    expect(status).to_contain_text("2 faces named Barack Obama; 2 faces joined Barack Obama's gallery.")
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Barack Obama", "Unknown", "Unknown"])
    expect(page.locator("#summary")).to_contain_text("Barack Obama")
    expect(groups).to_have_count(1)
    expect(cluster_with(panel, "biden.jpg")).to_have_count(1)
    expect(page.locator("#people-names option")).to_have_count(1)
    expect(page.locator("#people-names option")).to_have_attribute("value", "Barack Obama")
    shot(page, "unknown-named")

    cluster_with(panel, "biden.jpg").get_by_role("button", name="Not a face / ignore").click()
    expect(status).to_contain_text("2 faces of Unknown person 1 dismissed")
    expect(groups).to_have_count(0)
    expect(panel).to_contain_text("No unknown faces left in this batch.")
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Barack Obama", "Unknown", "Unknown"])

    page.reload()
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Barack Obama", "Unknown", "Unknown"])
    # Nothing left to name; the panel stays for the dismissed faces, folded away, so a dismissal can be undone.
    expect(panel).to_contain_text("No unknown faces left in this batch.")
    expect(panel.locator("#dismissed-faces summary")).to_have_text("Dismissed faces (2)")
    put_all_back = panel.get_by_role("button", name="Put all back")
    expect(put_all_back).to_be_hidden()  # folded away until asked for
    panel.locator("#dismissed-faces summary").click()
    put_all_back.click()
    expect(page.locator("#unknown-status")).to_contain_text("2 faces back among the unknown faces.")
    expect(groups).to_have_count(1)
    expect(panel.locator("#dismissed-faces")).to_be_hidden()


def test_a_dismissal_is_undone_at_once_or_later_from_the_dismissed_faces(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    log = batch_via_api(client, admin, *OBAMA, BIDEN[0])
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    panel = page.locator("#unknown-people")
    groups = panel.locator("li.cluster")
    expect(groups).to_have_count(2)
    expect(panel.locator("#dismissed-faces")).to_be_hidden()  # nothing dismissed yet

    cluster_with(panel, "obama.jpg").get_by_role("button", name="Not a face / ignore").click()
    status = page.locator("#unknown-status")
    expect(status).to_contain_text("dismissed")
    expect(groups).to_have_count(1)
    status.get_by_role("button", name="Undo").click()
    expect(status).to_contain_text("Undone: 2 faces back among the unknown faces.")
    expect(cluster_with(panel, "obama.jpg").locator(".cluster-face")).to_have_count(2)
    expect(panel.locator("#dismissed-faces")).to_be_hidden()

    cluster_with(panel, "biden.jpg").get_by_role("button", name="Not a face / ignore").click()
    expect(groups).to_have_count(1)
    page.reload()
    dismissed = panel.locator("#dismissed-faces")
    expect(dismissed.locator("summary")).to_have_text("Dismissed faces (1)")
    dismissed.locator("summary").click()
    wait_for_crops(page, "#dismissed-faces img.crop")
    shot(page, "unknown-dismissed")
    dismissed.get_by_role("button", name="Put back face 1 of biden.jpg").click()
    expect(status).to_contain_text("Face 1 of biden.jpg is back among the unknown faces.")
    expect(cluster_with(panel, "biden.jpg")).to_have_count(1)
    expect(dismissed).to_be_hidden()


def test_a_face_is_left_out_before_naming_and_look_alikes_join_the_person(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    log = batch_via_api(client, admin, *OBAMA, BIDEN[0])
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    panel = page.locator("#unknown-people")
    obama = cluster_with(panel, "obama.jpg")
    expect(obama.locator(".cluster-face")).to_have_count(2)

    # obama2.jpg is left out (×): only obama.jpg is named.
    obama.get_by_role("button", name="Leave out face 1 of obama2.jpg").click()
    expect(obama.get_by_role("button", name="Put back face 1 of obama2.jpg")).to_be_visible()
    expect(obama.locator(".cluster-face.left-out")).to_have_count(1)
    shot(page, "unknown-left-out")
    obama.get_by_label("Who is this?").fill("Barack Obama")
    obama.get_by_label("Who is this?").press("Enter")
    expect(page.locator("#unknown-status")).to_contain_text("1 face named Barack Obama")
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Unknown", "Unknown"])

    # obama2.jpg is now alone; a new name for it is refused as it looks like Barack Obama: it is him.
    alone = cluster_with(panel, "obama2.jpg")
    expect(alone.locator(".cluster-face")).to_have_count(1)
    alone.get_by_label("Who is this?").fill("Obama Again")
    alone.get_by_role("button", name="Name", exact=True).click()
    alert = alone.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"This face looks like Barack Obama \(confidence \d+(\.\d)?%\)"))
    expect(alert.get_by_role("button", name="Name it Obama Again anyway")).to_be_visible()
    shot(page, "unknown-looks-like")
    alert.get_by_role("button", name="It is Barack Obama").click()
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Barack Obama", "Unknown"])

    # An enrolled person's name typed in another case is that person, not a new one.
    biden = enroll(client, admin, "Joe Biden", KNN / "train" / "biden" / "biden2.jpg")
    page.reload()
    expect(page.locator("#people-names option")).to_have_count(2)
    alone = cluster_with(panel, "biden.jpg")
    alone.get_by_label("Who is this?").fill("joe  BIDEN")
    alone.get_by_role("button", name="Name", exact=True).click()
    expect(page.locator("#unknown-status")).to_contain_text("1 face named Joe Biden")
    expect(page.locator("#entries td.person")).to_have_text(["Barack Obama", "Barack Obama", "Joe Biden"])
    people = client.get("/api/identities", headers=auth(admin)).json()["identities"]
    assert [p["name"] for p in people] == ["Barack Obama", "Joe Biden"]
    assert next(p for p in people if p["id"] == biden["id"])["face_count"] == 2


def test_a_single_face_is_dismissed_as_not_a_face(
    page: Page, live_server: LiveServer, client: httpx.Client, admin: str
) -> None:
    log = batch_via_api(client, admin, *OBAMA, BIDEN[0])
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    group = cluster_with(page.locator("#unknown-people"), "obama.jpg")
    expect(group.locator(".cluster-face")).to_have_count(2)
    wait_for_crops(page, "#unknown-people img.crop")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-unknown-panel")
    group.get_by_role("button", name="Not a face: face 1 of obama.jpg").click()
    expect(page.locator("#unknown-status")).to_contain_text("Face 1 of obama.jpg was dismissed")
    alone = cluster_with(page.locator("#unknown-people"), "obama2.jpg")
    expect(alone.locator(".cluster-face .filename")).to_have_text(["obama2.jpg"])
    expect(alone.locator(".cluster-title")).to_have_text(re.compile(r"^Unknown person \d · 1 face$"))
    expect(alone.get_by_role("button", name=re.compile("^(Leave out|Not a face:)"))).to_have_count(0)


def test_a_user_sees_the_unknown_people_without_the_admin_actions(
    page: Page, live_server: LiveServer, client: httpx.Client, tokens: Callable[..., str]
) -> None:
    user = tokens("example.com", "user")
    log = batch_via_api(client, user, *OBAMA)
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/#/batches/{log['batch_id']}")
    panel = page.locator("#unknown-people")
    expect(panel.locator("li.cluster .cluster-face")).to_have_count(2)
    expect(panel).to_contain_text("An admin can name them.")
    wait_for_crops(page, "#unknown-people img.crop")
    expect(panel.get_by_role("button", name=re.compile("Name|Not a face|Leave out"))).to_have_count(0)
    expect(panel.get_by_role("textbox")).to_have_count(0)


def test_a_chosen_face_refused_as_too_small_leaves_the_others_to_choose(
    page: Page, settings: Settings, admin: str, face_model: FaceModel
) -> None:
    strict = settings.model_copy(update={"enroll_min_eye_distance": 55.0})  # the small face 3 is refused
    with LiveServer(strict, model=face_model) as server:
        sign_in(page, server, admin)
        page.goto(f"{server.url}/#/people")
        enroll_on_page(page, "Barack Obama", DUO)
        chooser = page.locator("#choose-face")
        small = chooser.get_by_role("button", name="Face 3 · too small")
        expect(chooser.get_by_role("button", name="Face 1", exact=True)).to_be_visible()
        small.click()
        feedback = page.locator("#people-feedback")
        expect(feedback.get_by_role("alert")).to_be_visible()
        expect(feedback.locator("#enrollment-report")).to_contain_text("obama_and_biden.jpg: Not enrolled:")
        shot(page, "enroll-face-refused")
        feedback.locator("#choose-face").get_by_role("button", name="Face 1", exact=True).click()
        expect(feedback).to_contain_text("Enrolled Barack Obama.")
        expect(feedback.locator("#enrollment-report")).to_have_text("obama_and_biden.jpg enrolled (face 1)")
