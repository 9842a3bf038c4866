// facerec web page. Talks only to the public API with the token kept in sessionStorage (this tab), or in
// localStorage (this browser) when "Remember on this device" is ticked.
// Every piece of data is inserted with textContent (never as markup), so names and file names stay text.
"use strict";

const TOKEN_KEY = "facerec.token";
const config = {
  maxBatch: Number(document.body.dataset.maxBatch || 100),
  maxFileMb: Number(document.body.dataset.maxFileMb || 10),
};
const state = { token: sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY), me: null };
const main = document.getElementById("main");

// ----- small DOM helpers ---------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// replaceChildren without the nulls that optional parts leave behind.
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

function errorBox(message) {
  return el("p", { class: "error", role: "alert", text: message });
}

function render(title, ...children) {
  fill(main, el("h1", { text: title }), ...children);
  document.title = `${title} · facerec`;
}

function confidenceBar(confidence) {
  const fill = el("span");
  fill.style.width = `${Math.max(0, Math.min(100, confidence))}%`;
  return el("span", { class: "bar", role: "img", "aria-label": `${confidence}%` }, fill);
}

// "1 face", "2 faces", "1 person", "3 people".
function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

function formatDate(iso) {
  const date = new Date(`${iso}Z`);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// ----- API -----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function parseBody(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { error: text || response.statusText };
  }
}

async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Authorization: state.token || "" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `The server could not be reached (${err.message})`);
  }
  const data = await parseBody(response);
  if (!response.ok || data.success === false) {
    if (response.status === 401 && path !== "/api/auth/me") return signOut("Your token is no longer accepted; sign in again.");
    throw new ApiError(response.status, data.error || `Request failed (${response.status})`, data);
  }
  return data;
}

// Uploads go through XMLHttpRequest because fetch cannot report upload progress.
function uploadWithProgress(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", state.token || "");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      let data;
      try {
        data = JSON.parse(xhr.responseText || "{}");
      } catch {
        data = { error: xhr.responseText || xhr.statusText };
      }
      if (xhr.status >= 200 && xhr.status < 300 && data.success !== false) resolve(data);
      else reject(new ApiError(xhr.status, data.error || `Upload failed (${xhr.status})`, data));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "The upload failed: the server could not be reached")));
    xhr.send(form);
  });
}

// Downloads need the Authorization header, so they are fetched and handed to the browser as a blob.
async function download(path, filename) {
  const response = await fetch(path, { headers: { Authorization: state.token || "" } });
  if (!response.ok) {
    const data = await parseBody(response);
    throw new ApiError(response.status, data.error || `Download failed (${response.status})`);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// The batch's CSV exports: the spec's one row per photo, and one row per recognised face.
function downloadLink(batchId) {
  const base = `/api/batch-photos/logs/${encodeURIComponent(batchId)}/export`;
  const status = el("span", { class: "muted" });
  const link = (path, text, filename) => el("a", {
    href: path,
    class: "button secondary",
    text,
    onclick: (event) => {
      event.preventDefault();
      fill(status);
      download(path, filename).catch((err) => fill(status, errorBox(err.message)));
    },
  });
  return [
    link(base, "Download CSV", `batch_${batchId}.csv`),
    link(`${base}?rows=faces`, "Download per-face CSV", `batch_${batchId}_faces.csv`),
    status,
  ];
}

async function authedImage(path, alt, className) {
  const img = el("img", { alt, class: className });
  try {
    const response = await fetch(path, { headers: { Authorization: state.token || "" } });
    if (response.ok) img.src = URL.createObjectURL(await response.blob());
  } catch {
    /* a missing thumbnail leaves the grey placeholder */
  }
  return img;
}

// Face crops never change (a face id is never reused), so each is fetched once per session and kept as a blob URL.
const blobUrls = new Map();

function blobUrl(path) {
  if (!blobUrls.has(path)) {
    const pending = fetch(path, { headers: { Authorization: state.token || "" } })
      .then(async (response) => (response.ok ? URL.createObjectURL(await response.blob()) : null))
      .catch(() => null)
      .then((url) => {
        if (!url) blobUrls.delete(path); // asked again next time
        return url;
      });
    blobUrls.set(path, pending);
  }
  return blobUrls.get(path);
}

function forgetBlobUrls() {
  for (const pending of blobUrls.values()) pending.then((url) => url && URL.revokeObjectURL(url));
  blobUrls.clear();
}

// An <img> shown at once (a grey placeholder) whose picture arrives when the API answers.
function apiImage(path, alt, className) {
  const img = el("img", { alt, class: `${className} loading` });
  if (!path) {
    img.classList.replace("loading", "missing");
    return img;
  }
  blobUrl(path).then((url) => {
    img.classList.remove("loading");
    if (url) img.src = url;
    else img.classList.add("missing");
  });
  return img;
}

// ----- session -------------------------------------------------------------------------------------
function keepToken(token, remember) {
  // One place only, so signing in again without "remember" does not leave an older token on the device.
  (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  (remember ? sessionStorage : localStorage).removeItem(TOKEN_KEY);
}

function signOut(message) {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  forgetBlobUrls();
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  updateNav();
  location.hash = "#/signin";
  renderSignIn(message);
  return new Promise(() => {}); // the caller's work is abandoned
}

function updateNav() {
  const nav = document.getElementById("nav");
  nav.hidden = !state.me;
  document.getElementById("nav-people").hidden = !(state.me && state.me.role === "admin");
  document.getElementById("who").textContent = state.me ? `${state.me.domain} · ${state.me.role}` : "";
  const route = location.hash.split("/")[1] || "";
  for (const link of nav.querySelectorAll("a[data-route]")) {
    if (link.dataset.route === route) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function renderSignIn(message) {
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true });
  const feedback = el("div", { id: "signin-feedback" }, message ? errorBox(message) : null);
  const remember = el("input", { id: "remember", name: "remember", type: "checkbox" });
  const button = el("button", { type: "submit", text: "Sign in" });
  const form = el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        fill(feedback);
        button.disabled = true;
        state.token = input.value.trim();
        try {
          state.me = await api("/api/auth/me");
          keepToken(state.token, remember.checked);
          location.hash = "#/recognize";
          route();
        } catch (err) {
          state.token = null;
          fill(feedback, errorBox(`Sign-in failed: ${err.message}`));
        } finally {
          button.disabled = false;
        }
      },
    },
    el("label", { for: "token", text: "Token" }),
    input,
    el("p", { class: "muted", id: "token-hint" },
      "Your API token, sent with each request. An administrator creates one on the server with ",
      el("code", { class: "command", text: "facerec token create --domain D --admin" }),
      " (leave out ", el("code", { text: "--admin" }), " for a user token); ",
      el("code", { text: "make run" }), " keeps an admin token for domain ", el("code", { text: "localhost" }),
      " in ", el("code", { text: "storage/admin-token.txt" }), "."),
    el("label", { class: "check", for: "remember" }, remember, "Remember on this device",
      el("span", { class: "muted", text: "(otherwise it is forgotten when this tab closes)" })),
    button,
    feedback,
  );
  render("Sign in", form);
  input.focus();
}

// ----- recognise -----------------------------------------------------------------------------------
function summaryStats(summary) {
  const stat = (label, value, wide) => el("div", { class: wide ? "stat wide" : "stat" }, el("b", { text: String(value) }), label);
  return el(
    "div",
    { class: "stats", id: "summary" },
    stat(summary.total_photos === 1 ? "photo" : "photos", summary.total_photos),
    stat("recognised", summary.recognized_count),
    stat("unknown", summary.unrecognized_count),
    stat("recognition rate", `${summary.recognition_rate}%`),
    stat("average confidence", summary.avg_confidence),
    stat(summary.persons_list.length === 1 ? "person" : "people", summary.persons_list.join(", ") || "–",
      summary.persons_list.length > 1),
  );
}

function matchesList(matches, label) {
  if (!matches.length) return el("span", { class: "muted", text: "no match" });
  return el(
    "ol",
    { class: "matches", "aria-label": label },
    matches.map((m) => el("li", {}, `${m.person} ${m.confidence}%`, confidenceBar(m.confidence))),
  );
}

// A face (or a person in a photo) someone was decided to be; "Unknown" with no id is nobody.
function isKnown(result) {
  return result.identity_id !== null || result.person !== "Unknown";
}

// "kit_harington 95%", or "Unknown", or just the name when the confidence is not known (some corrections).
function whoText(result) {
  if (!isKnown(result)) return "Unknown";
  return result.confidence === null || result.confidence === undefined ? result.person : `${result.person} ${result.confidence}%`;
}

// Everyone recognised in a photo, best first, and how many faces nobody was recognised on.
function peopleList(entry) {
  const unknown = entry.faces.filter((face) => !isKnown(face)).length;
  if (!entry.people.length && !unknown) return el("span", { class: "muted", text: "no face" });
  return el(
    "ul",
    { class: "chips", "aria-label": `People in ${entry.filename}` },
    entry.people.map((p) => el("li", { class: "chip known", "data-person": p.person, text: whoText(p) })),
    unknown ? el("li", { class: "chip unknown", text: `${unknown} unknown` }) : null,
  );
}

function facesNote(entry) {
  return entry.metadata.note ? el("p", { class: "muted small", text: entry.metadata.note }) : null;
}

function entriesTable(entries, previews) {
  const head = el(
    "tr",
    {},
    previews ? el("th", { text: "Photo" }) : null,
    el("th", { text: "File" }),
    el("th", { text: "Person" }),
    el("th", { text: "Confidence" }),
    el("th", { text: "Top 3", class: "optional" }),
    el("th", { text: "Faces" }),
    el("th", { text: "Everyone in photo" }),
    el("th", { text: "ms", class: "optional" }),
  );
  const rows = entries.map((entry, index) => {
    const primary = entry.primary_result;
    return el(
      "tr",
      { "data-recognized": String(entry.recognized) },
      previews ? el("td", {}, previews[index] ? el("img", { class: "preview", src: previews[index], alt: "" }) : null) : null,
      el("td", { text: entry.filename }),
      el("td", { class: entry.recognized ? "yes person" : "no person", text: primary.person }),
      el("td", { text: primary.confidence === null ? "–" : `${primary.confidence}%` }),
      el("td", { class: "optional" }, matchesList(entry.top_3_matches)),
      el("td", { text: String(entry.metadata.face_count) }),
      el("td", { class: "people" }, peopleList(entry), facesNote(entry)),
      el("td", { class: "optional", text: String(entry.metadata.processing_time_ms) }),
    );
  });
  return el("div", { class: "table-wrap" }, el("table", { id: "entries" }, el("thead", {}, head), el("tbody", {}, rows)));
}

// Sets a face box's place over a loaded photo, as fractions of its natural (EXIF-oriented) size, so the box follows
// any display size. Returns the box's left and top as fractions.
function placeBox(node, [x1, y1, x2, y2], img) {
  const fraction = (value, size) => Math.max(0, Math.min(1, value / size));
  const left = fraction(x1, img.naturalWidth);
  const top = fraction(y1, img.naturalHeight);
  node.style.left = `${left * 100}%`;
  node.style.top = `${top * 100}%`;
  node.style.width = `${(fraction(x2, img.naturalWidth) - left) * 100}%`;
  node.style.height = `${(fraction(y2, img.naturalHeight) - top) * 100}%`;
  return { left, top };
}

// The uploaded photo as the browser shows it, with a labelled box on every face. Boxes come in the photo's
// EXIF-oriented pixels, which is how browsers show photos (image-orientation: from-image) and what
// naturalWidth/naturalHeight measure, so they are placed as fractions of those and follow any display size.
function annotatedPhoto(entry, src) {
  const boxes = entry.faces.map((face) => el(
    "li",
    { class: `face-box ${isKnown(face) ? "known" : "unknown"}`, "data-person": face.person },
    el("span", { class: "face-label", text: whoText(face) }),
  ));
  const list = el("ol", { class: "face-boxes", "aria-label": `Faces in ${entry.filename}` }, boxes);
  const img = el("img", { alt: entry.filename, class: "photo-img" });
  const frame = el("div", { class: "photo-frame pending" }, img, list);
  img.addEventListener("load", () => {
    entry.faces.forEach((face, index) => {
      const { left, top } = placeBox(boxes[index], face.box, img);
      boxes[index].dataset.below = String(top < 0.1);
      boxes[index].classList.toggle("label-end", left > 0.6);
    });
    frame.classList.remove("pending");
    arrangeLabels(boxes);
    new ResizeObserver(() => arrangeLabels(boxes)).observe(frame);
  }, { once: true });
  img.addEventListener("error", () => {
    // A format the server reads but this browser cannot show: the faces are still listed, as text.
    frame.classList.replace("pending", "broken");
    img.hidden = true;
    frame.prepend(el("p", { class: "muted", text: "This browser cannot show the photo." }));
  }, { once: true });
  img.src = src;
  const count = entry.metadata.face_count;
  return el(
    "figure",
    { class: "photo card", "data-file": entry.filename },
    frame,
    el("figcaption", {}, el("b", { text: entry.filename }), ` · ${count} face${count === 1 ? "" : "s"}`, facesNote(entry)),
  );
}

// Each label goes above its box (below near the top edge) unless it would cover a label already placed; the
// largest faces come first, so theirs keep the first choice.
function arrangeLabels(boxes) {
  const placed = [];
  const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const box of boxes) {
    const label = box.firstElementChild;
    const preferred = box.dataset.below === "true";
    box.classList.toggle("label-below", preferred);
    let rect = label.getBoundingClientRect();
    if (placed.some((other) => overlaps(other, rect))) {
      box.classList.toggle("label-below", !preferred);
      const flipped = label.getBoundingClientRect();
      if (placed.some((other) => overlaps(other, flipped))) box.classList.toggle("label-below", preferred);
      else rect = flipped;
    }
    placed.push(rect);
  }
}

function annotatedPhotos(entries, previews) {
  const figures = entries.map((entry, index) => (previews[index] ? annotatedPhoto(entry, previews[index]) : null));
  if (!figures.some(Boolean)) return null;
  return el(
    "section",
    { "aria-labelledby": "photos-title" },
    el("h2", { id: "photos-title", text: "Faces in each photo" }),
    el("div", { class: "photos", id: "annotated" }, figures),
  );
}

function rejectedList(errors) {
  if (!errors || !errors.length) return null;
  return el(
    "div",
    { class: "card", id: "rejected" },
    el("h2", { text: "Files that could not be used" }),
    el("ul", {}, errors.map((e) => el("li", {}, el("b", { text: e.filename }), `: ${e.error}`))),
  );
}

function renderRecognize() {
  let files = [];
  const input = el("input", { id: "photos", type: "file", name: "photos[]", multiple: true, accept: "image/*" });
  const chosen = el("p", { class: "muted", id: "chosen", text: "No photos chosen." });
  const feedback = el("div");
  const results = el("div", { id: "results" });
  const progress = el("progress", { max: 1, value: 0, hidden: true, id: "upload-progress" });
  const progressLabel = el("span", { class: "muted", id: "progress-label" });
  const submit = el("button", { type: "submit", text: "Upload & recognise", disabled: true });

  const choose = (list) => {
    files = Array.from(list);
    fill(feedback);
    if (files.length > config.maxBatch) {
      fill(feedback, errorBox(`At most ${config.maxBatch} photos per batch; ${files.length} were chosen.`));
    }
    chosen.textContent = files.length ? `${plural(files.length, "photo")} chosen.` : "No photos chosen.";
    submit.disabled = !files.length || files.length > config.maxBatch;
  };
  input.addEventListener("change", () => choose(input.files));

  const drop = el(
    "div",
    { class: "drop", id: "drop" },
    el("label", { for: "photos", text: `Choose or drop up to ${config.maxBatch} photos (≤ ${config.maxFileMb} MB each)` }),
    input,
    chosen,
  );
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files);
  });

  const form = el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        if (!files.length) return;
        const body = new FormData();
        for (const file of files) body.append("photos[]", file, file.name);
        submit.disabled = true;
        fill(feedback);
        fill(results);
        progress.hidden = false;
        progress.value = 0;
        progressLabel.textContent = "Uploading…";
        main.setAttribute("aria-busy", "true");
        try {
          const answer = await uploadWithProgress("/api/batch-photos/recognize", body, (fraction) => {
            progress.value = fraction;
            progressLabel.textContent = fraction < 1 ? `Uploading… ${Math.round(fraction * 100)}%` : "Recognising faces…";
          });
          progressLabel.textContent = "Done.";
          const log = await api(answer.log_url);
          for (const url of shownPreviews.splice(0)) URL.revokeObjectURL(url);
          const previews = matchPreviews(files, answer.errors, log.entries);
          shownPreviews.push(...previews.filter(Boolean));
          fill(results,
            el("h2", { text: `Batch ${answer.batch_id}` }),
            summaryStats(answer.summary),
            el("div", { class: "row" }, downloadLink(answer.batch_id),
              el("a", { class: "button secondary", href: `#/batches/${answer.batch_id}`, text: "Open batch" })),
            annotatedPhotos(log.entries, previews),
            el("h2", { text: "Details" }),
            entriesTable(log.entries, previews),
            rejectedList(answer.errors),
          );
        } catch (err) {
          progressLabel.textContent = "";
          fill(feedback, errorBox(err.message));
          const rejected = err.body && err.body.errors ? rejectedList(err.body.errors) : null;
          if (rejected) fill(results, rejected);
        } finally {
          main.removeAttribute("aria-busy");
          submit.disabled = !files.length;
          progress.hidden = true;
        }
      },
    },
    drop,
    el("div", { class: "row" }, submit, progress, progressLabel),
    feedback,
  );
  render("Recognise", form, results);
}

// The object URLs of the last results' previews, let go when new results replace them.
const shownPreviews = [];

// Usable files keep their upload order in the log; rejected ones are skipped by name.
function matchPreviews(files, errors, entries) {
  const rejected = new Map();
  for (const e of errors || []) rejected.set(e.filename, (rejected.get(e.filename) || 0) + 1);
  const usable = files.filter((file) => {
    const left = rejected.get(file.name) || 0;
    if (left > 0) {
      rejected.set(file.name, left - 1);
      return false;
    }
    return true;
  });
  return entries.map((_, index) => (usable[index] ? URL.createObjectURL(usable[index]) : null));
}

// ----- batches -------------------------------------------------------------------------------------
const PAGE_SIZE = 20;

async function renderBatches(params) {
  const offset = Math.max(0, Number(params.get("offset") || 0));
  const person = (params.get("person") || "").trim();
  const personName = params.get("name") || person;
  render("Batches", el("p", { class: "muted", text: "Loading…" }));
  let page;
  try {
    const only = person ? `&person=${encodeURIComponent(person)}` : "";
    page = await api(`/api/batch-photos/logs?limit=${PAGE_SIZE}&offset=${offset}${only}`);
  } catch (err) {
    return render("Batches", errorBox(err.message));
  }
  const feedback = el("div");
  const rows = page.batches.map((batch) =>
    el(
      "tr",
      { "data-batch": batch.batch_id },
      el("td", {}, el("a", { href: `#/batches/${batch.batch_id}`, text: batch.batch_id })),
      el("td", { text: formatDate(batch.created_at) }),
      el("td", { text: String(batch.total_photos) }),
      el("td", { text: `${batch.summary.recognition_rate}%` }),
      el("td", { class: "optional", text: batch.summary.persons_list.join(", ") || "–" }),
      el(
        "td",
        {},
        el("div", { class: "row" }, downloadLink(batch.batch_id), el("button", {
          type: "button",
          class: "danger",
          text: "Delete",
          onclick: async () => {
            if (!confirm(`Delete batch ${batch.batch_id} and all its entries?`)) return;
            try {
              await api(`/api/batch-photos/logs/${encodeURIComponent(batch.batch_id)}`, { method: "DELETE" });
              renderBatches(params);
            } catch (err) {
              fill(feedback, errorBox(err.message));
            }
          },
        })),
      ),
    ),
  );
  const table = page.batches.length
    ? el("div", { class: "table-wrap" }, el("table", { id: "batches" },
        el("thead", {}, el("tr", {}, ["Batch", "Date", "Photos", "Recognised", "People", ""].map((h, i) =>
          el("th", { text: h, class: i === 4 ? "optional" : null })))),
        el("tbody", {}, rows)))
    : el("p", { class: "muted", text: person ? `No batch with ${personName}.` : "No batches yet." });
  const pageLink = (to) => {
    const query = new URLSearchParams({ offset: String(to) });
    if (person) query.set("person", person);
    if (person && personName !== person) query.set("name", personName);
    return `#/batches?${query}`;
  };
  const pager = el(
    "div",
    { class: "row" },
    offset > 0 ? el("a", { class: "button secondary", href: pageLink(Math.max(0, offset - PAGE_SIZE)), text: "Newer" }) : null,
    offset + PAGE_SIZE < page.total ? el("a", { class: "button secondary", href: pageLink(offset + PAGE_SIZE), text: "Older" }) : null,
    el("span", { class: "muted", id: "batch-count", text: person ? `${plural(page.total, "batch", "batches")} with ${personName}` : plural(page.total, "batch", "batches") }),
  );
  const personInput = el("input", { id: "batch-person", type: "search", name: "person", value: personName, placeholder: "a person's name" });
  const personForm = el(
    "form",
    {
      class: "row",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const wanted = personInput.value.trim();
        location.hash = wanted ? `#/batches?person=${encodeURIComponent(wanted)}` : "#/batches";
      },
    },
    el("label", { for: "batch-person", text: "Batches with" }),
    personInput,
    el("button", { type: "submit", class: "secondary", text: "Show" }),
    person ? el("a", { href: "#/batches", text: "All batches" }) : null,
  );
  render("Batches", personForm, feedback, table, pager);
}

// The domain's people (admin), for choosing who a face is.
async function allPeople() {
  const people = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api(`/api/identities?limit=500&offset=${offset}`);
    people.push(...page.identities);
    if (!page.identities.length || people.length >= page.total) return people;
  }
}

function faceCard(entry, entryIndex, face, faceIndex, correct) {
  const number = faceIndex + 1;
  const known = isKnown(face);
  return el(
    "figure",
    {
      class: `face-card ${known ? "known" : "unknown"}${face.corrected ? " corrected" : ""}`,
      id: `face-${face.face_id}`,
      "data-person": face.person,
    },
    apiImage(face.crop_url, `Face ${number} of ${entry.filename}`, "crop"),
    el(
      "figcaption",
      {},
      el("span", { class: "muted small", text: `Face ${number}` }),
      el("b", { class: `face-name ${known ? "yes" : "no"}`, text: face.person }),
      el("span", { class: "face-confidence" },
        face.confidence === null ? "–" : `${face.confidence}%`,
        face.confidence === null ? null : confidenceBar(face.confidence)),
      face.corrected ? el("span", { class: "badge", text: "corrected" }) : null,
      face.matches.length ? el("span", { class: "muted small", text: "Top matches" }) : null,
      matchesList(face.matches.slice(0, 3), `Top matches of face ${number} of ${entry.filename}`),
      correct ? el("button", {
        type: "button",
        class: "secondary small",
        text: "Correct",
        "aria-label": `Correct face ${number} of ${entry.filename}`,
        "data-correct": `${entryIndex}-${faceIndex}`,
        onclick: () => correct(entryIndex, faceIndex),
      }) : null,
    ),
  );
}

function batchTable(rows, correct) {
  const head = el("tr", {}, ["File", "Person", "Confidence", "Everyone in photo", "Faces"].map((h) => el("th", { text: h })));
  const body = rows.map(({ entry, index }) => el(
    "tr",
    { "data-recognized": String(entry.recognized), "data-entry": String(index) },
    el("td", { class: "file", text: entry.filename }),
    el("td", { class: entry.recognized ? "yes person" : "no person", "data-label": "Largest face", text: entry.primary_result.person }),
    el("td", { "data-label": "Confidence", text: entry.primary_result.confidence === null ? "–" : `${entry.primary_result.confidence}%` }),
    el("td", { class: "people" }, peopleList(entry)),
    el(
      "td",
      { class: "faces-cell" },
      entry.faces.length
        ? el("div", { class: "face-cards" }, entry.faces.map((face, i) => faceCard(entry, index, face, i, correct)))
        : el("span", { class: "muted", text: "No face found" }),
      facesNote(entry),
    ),
  ));
  return el("div", { class: "table-wrap" }, el("table", { id: "entries", class: "batch" }, el("thead", {}, head), el("tbody", {}, body)));
}

// Who a face is, chosen from the domain's people (or Unknown); optionally the face joins their gallery.
function correctionDialog({ entry, face, faceIndex, people, save, closed }) {
  const number = faceIndex + 1;
  const select = el(
    "select",
    { id: "correct-person", name: "person" },
    el("option", { value: "", text: "Unknown (nobody)" }),
    people.map((p) => el("option", { value: String(p.id), text: p.name })),
  );
  select.value = face.identity_id === null ? "" : String(face.identity_id);
  const gallery = el("input", { id: "correct-gallery", type: "checkbox", name: "add_to_gallery" });
  const canAdd = Boolean(face.crop_url);
  const sync = () => {
    gallery.disabled = !select.value || !canAdd;
    if (gallery.disabled) gallery.checked = false;
  };
  select.addEventListener("change", sync);
  sync();
  const feedback = el("div");
  const saveButton = el("button", { type: "submit", text: "Save" });
  const dialog = el("dialog", { class: "correct card", "aria-labelledby": "correct-title" });
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        saveButton.disabled = true;
        fill(feedback);
        try {
          await save({ identity_id: select.value ? Number(select.value) : null, add_to_gallery: gallery.checked });
          dialog.close();
        } catch (err) {
          fill(feedback, errorBox(err.message));
        } finally {
          saveButton.disabled = false;
        }
      },
    },
    el("h2", { id: "correct-title", text: `Who is face ${number} of ${entry.filename}?` }),
    el(
      "div",
      { class: "row" },
      apiImage(face.crop_url, `Face ${number} of ${entry.filename}`, "crop"),
      el("div", {}, el("p", { text: `Now: ${whoText(face)}${face.corrected ? " (corrected)" : ""}` }),
        matchesList(face.matches.slice(0, 3), "Top matches")),
    ),
    el("label", { for: "correct-person", text: "Person" }),
    select,
    el("label", { class: "check", for: "correct-gallery" }, gallery, "Also add this face to their gallery",
      canAdd ? null : el("span", { class: "muted", text: "(unavailable: the face's crop was not kept)" })),
    el("div", { class: "row" }, saveButton,
      el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => dialog.close() })),
    feedback,
  );
  dialog.append(form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (closed) closed();
  });
  document.body.append(dialog);
  dialog.showModal();
  select.focus();
}

// ----- unknown people of a batch -------------------------------------------------------------------
// The API takes "barack  obama" and "Barack Obama" for one name (case, spacing, Unicode form); so does the page.
function nameKey(name) {
  return name.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

const CLUSTERS_SHOWN = 20; // groups shown before "Show all"
const CROPS_SHOWN = 12; // faces of a group shown before "Show all"
const FACES_PER_CALL = 1000; // face_ids the unknown-faces API takes in one request

// The batch's unrecognised faces grouped into people, biggest group first. An admin names a group (a new person,
// or an enrolled one picked from the suggestions), leaves single faces out of it first (×), or dismisses faces
// that are not a face or nobody to name — and can undo that, or put dismissed faces back from the list below the
// groups; a user only sees the groups. ``changed`` reloads the batch's entries.
// The API takes up to 1,000 face ids a call; a big group, or the dismissed list, can hold more.
async function postFaceIds(path, ids) {
  for (let start = 0; start < ids.length; start += FACES_PER_CALL) {
    await api(path, { method: "POST", json: { face_ids: ids.slice(start, start + FACES_PER_CALL) } });
  }
}

function unknownPeoplePanel(batchId, admin, changed) {
  const status = el("div", { id: "unknown-status", tabindex: "-1" });
  const intro = el("p", { class: "muted", id: "unknown-intro" });
  const list = el("ol", { class: "clusters", id: "clusters", "aria-labelledby": "unknown-title" });
  const more = el("div", { class: "row" });
  const datalist = admin ? el("datalist", { id: "people-names" }) : null;
  const dismissedTitle = el("summary");
  const dismissedBody = el("div");
  const dismissedBox = admin
    ? el("details", { class: "dismissed-faces", id: "dismissed-faces", hidden: true }, dismissedTitle, dismissedBody)
    : null;
  const section = el(
    "section",
    { class: "card unknown-people", id: "unknown-people", "aria-labelledby": "unknown-title", hidden: true },
    el("h2", { id: "unknown-title", text: "Unknown people" }),
    intro,
    status,
    list,
    more,
    dismissedBox,
    datalist,
  );
  let people = null; // the domain's people: suggestions, and whether a typed name is someone enrolled
  let showAll = false;
  let acted = false; // once something was named or dismissed, an empty panel says so instead of vanishing
  let clusters = [];
  let dismissed = []; // the batch's dismissed faces (admin): they can be put back

  async function loadPeople() {
    if (!admin) return;
    try {
      people = (await api("/api/identities?limit=500")).identities;
    } catch {
      people = people || [];
    }
    fill(datalist, people.map((p) => el("option", { value: p.name })));
  }

  function told(node) {
    fill(status, node);
    status.focus({ preventScroll: false });
  }

  async function load() {
    let answer;
    const base = `/api/batch-photos/logs/${encodeURIComponent(batchId)}`;
    try {
      [answer, dismissed] = await Promise.all([
        api(`${base}/unknown-faces`),
        admin ? api(`${base}/dismissed-faces`).then((a) => a.faces, () => null) : [],
      ]);
    } catch (err) {
      section.hidden = false;
      fill(list);
      fill(more);
      return fill(intro, errorBox(`The unknown faces could not be grouped: ${err.message}`));
    }
    clusters = answer.clusters;
    section.hidden = !clusters.length && !acted && !(dismissed && dismissed.length);
    const faces = clusters.reduce((sum, cluster) => sum + cluster.size, 0);
    const capped = answer.faces_considered >= answer.limit ? ` Only the newest ${answer.limit} unknown faces are grouped.` : "";
    intro.textContent = !clusters.length
      ? "No unknown faces left in this batch."
      : `${plural(faces, "face")} nobody was recognised on, grouped by who they look like: ${plural(clusters.length, "group")}` +
        `${clusters.length > 1 ? ", the biggest first" : ""}.${admin
          ? " Name a group to enroll the person and label these faces; leave out (×) a face that is someone else first."
          : " An admin can name them."}${capped}`;
    draw();
    drawDismissed();
  }

  // Below the groups: the faces dismissed so far, each with "Put back", so a wrong click is never final.
  function drawDismissed() {
    if (!dismissedBox) return;
    if (dismissed === null) {
      dismissedBox.hidden = false;
      dismissedTitle.textContent = "Dismissed faces";
      return fill(dismissedBody, errorBox("The dismissed faces could not be listed."));
    }
    dismissedBox.hidden = !dismissed.length;
    dismissedTitle.textContent = `Dismissed faces (${dismissed.length})`;
    fill(dismissedBody,
      el("p", { class: "muted small", text: "Left out of the groups as not a face or nobody to name. Put one back to group it again." }),
      el("ul", { class: "face-cards cluster-faces", "aria-label": "Dismissed faces" }, dismissed.map((face) =>
        el("li", { class: "face-card cluster-face", "data-face": String(face.face_id) },
          apiImage(face.crop_url, `Face ${face.face + 1} of ${face.filename}`, "crop"),
          el("span", { class: "filename small", text: face.filename }),
          el("button", {
            type: "button",
            class: "secondary small",
            text: "Put back",
            "aria-label": `Put back face ${face.face + 1} of ${face.filename}`,
            onclick: () => restore([face.face_id], `Face ${face.face + 1} of ${face.filename} is back among the unknown faces.`),
          })))),
      dismissed.length > 1
        ? el("button", { type: "button", class: "secondary", text: "Put all back",
          onclick: () => restore(dismissed.map((face) => face.face_id), `${plural(dismissed.length, "face")} back among the unknown faces.`) })
        : null);
  }

  function draw() {
    const shown = showAll ? clusters : clusters.slice(0, CLUSTERS_SHOWN);
    fill(list, shown.map((cluster, index) => clusterRow(cluster, index)));
    fill(more, clusters.length > shown.length
      ? el("button", { type: "button", class: "secondary", text: `Show all ${clusters.length} groups`,
        onclick: () => { showAll = true; draw(); } })
      : null);
  }

  async function dismiss(ids, message) {
    try {
      await postFaceIds("/api/unknown-faces/dismiss", ids);
    } catch (err) {
      return told(errorBox(err.message));
    }
    acted = true;
    await load();
    told(el("p", { class: "notice" }, `${message} `,
      el("button", { type: "button", class: "link", text: "Undo", onclick: () => restore(ids, `Undone: ${plural(ids.length, "face")} back among the unknown faces.`) })));
  }

  async function restore(ids, message) {
    try {
      await postFaceIds("/api/unknown-faces/restore", ids);
    } catch (err) {
      return told(errorBox(err.message));
    }
    await load();
    told(el("p", { class: "notice", text: message }));
  }

  function clusterRow(cluster, index) {
    const label = `Unknown person ${index + 1}`;
    const included = new Set(cluster.faces.map((face) => face.face_id));
    const feedback = el("div", { class: "cluster-feedback" });
    let wholeGroup = false;
    const cropsList = el("ul", { class: "face-cards cluster-faces", "aria-label": `Faces of ${label}` });
    const nameButton = admin ? el("button", { type: "submit", text: "Name" }) : null;
    const ignoreButton = admin ? el("button", { type: "button", class: "secondary", text: "Not a face / ignore" }) : null;

    const sync = () => {
      if (nameButton) nameButton.disabled = !included.size;
      if (ignoreButton) ignoreButton.disabled = !included.size;
    };

    const faceItem = (face) => {
      const what = `face ${face.face + 1} of ${face.filename}`;
      const img = apiImage(face.crop_url, `Face ${face.face + 1} of ${face.filename}`, "crop");
      const item = el("li", { class: "face-card cluster-face", "data-face": String(face.face_id) }, img,
        el("button", {
          type: "button",
          class: "link filename small",
          text: face.filename,
          title: "Show this face in the batch",
          onclick: () => {
            const card = document.getElementById(`face-${face.face_id}`);
            if (!card) return;
            for (const other of main.querySelectorAll(".face-card.highlight")) other.classList.remove("highlight");
            card.classList.add("highlight");
            card.scrollIntoView({ block: "center" });
          },
        }));
      if (!admin || cluster.size === 1) return item; // a single face: the group's own buttons are its
      const leaveOut = el("button", { type: "button", class: "leave-out", text: "×", "aria-label": `Leave out ${what}`,
        title: "Leave this face out of the group" });
      leaveOut.addEventListener("click", () => {
        const out = included.has(face.face_id);
        if (out) included.delete(face.face_id);
        else included.add(face.face_id);
        item.classList.toggle("left-out", out);
        leaveOut.textContent = out ? "↺" : "×";
        leaveOut.setAttribute("aria-label", `${out ? "Put back" : "Leave out"} ${what}`);
        leaveOut.title = out ? "Put this face back in the group" : "Leave this face out of the group";
        sync();
      });
      item.append(leaveOut, el("span", { class: "badge left-out-badge", text: "left out" }), el("button", {
        type: "button",
        class: "link small not-face",
        text: "Not a face",
        "aria-label": `Not a face: ${what}`,
        onclick: () => dismiss([face.face_id], `Face ${face.face + 1} of ${face.filename} was dismissed: it stays in the batch as Unknown.`),
      }));
      return item;
    };

    const drawCrops = () => {
      const faces = wholeGroup ? cluster.faces : cluster.faces.slice(0, CROPS_SHOWN);
      fill(cropsList, faces.map(faceItem), cluster.faces.length > faces.length
        ? el("li", { class: "more-faces" }, el("button", { type: "button", class: "secondary small",
          text: `Show all ${cluster.faces.length} faces`, onclick: () => { wholeGroup = true; drawCrops(); } }))
        : null);
    };
    drawCrops();

    const row = el(
      "li",
      { class: "cluster", "data-cluster": cluster.cluster_id, "aria-label": label },
      el("h3", { class: "cluster-title" }, label, el("span", { class: "muted small", text: ` · ${plural(cluster.size, "face")}` })),
      cropsList,
    );
    if (!admin) return row;

    const inputId = `cluster-name-${cluster.cluster_id}`;
    const input = el("input", { id: inputId, type: "text", list: "people-names", autocomplete: "off", maxlength: 255,
      placeholder: "New or enrolled name" });

    async function name({ identityId, force = false } = {}) {
      const ids = cluster.faces.map((face) => face.face_id).filter((faceId) => included.has(faceId));
      if (!ids.length) return fill(feedback, errorBox("Every face is left out: put one back to name the group."));
      const typed = input.value.trim();
      const body = { face_ids: ids };
      if (identityId !== undefined) body.identity_id = identityId;
      else {
        if (!typed) {
          input.focus();
          return fill(feedback, errorBox("Type who this is first."));
        }
        const known = (people || []).find((p) => nameKey(p.name) === nameKey(typed));
        if (known) body.identity_id = known.id;
        else body.name = typed;
      }
      if (force) body.force = true;
      nameButton.disabled = true;
      fill(feedback, el("p", { class: "muted", text: "Naming…" }));
      let answer;
      try {
        answer = await api("/api/unknown-faces/name", { method: "POST", json: body });
      } catch (err) {
        nameButton.disabled = false;
        return fill(feedback, namingRefused(err, typed, ids.length));
      }
      acted = true;
      await changed();
      await Promise.all([loadPeople(), load()]);
      const who = answer.identity;
      const gallery = answer.enrolled.length
        ? `; ${plural(answer.enrolled.length, "face")} joined ${who.name}'s gallery`
        : "";
      told(el("div", { class: "notice" },
        el("p", {}, `${plural(answer.named, "face")} named ${who.name}${gallery}. `,
          el("a", { href: `#/people/${who.id}`, text: `Open ${who.name}` })),
        answer.rejected.length
          ? el("ul", { class: "report" }, answer.rejected.map((r) =>
            el("li", {}, el("b", { text: r.filename }), `: ${plainReason(r.error)} (still labelled ${who.name})`)))
          : null));
    }

    // A 409: the faces look like someone enrolled, or the name is taken; the ways on, as buttons.
    function namingRefused(err, typed, count) {
      const existing = err.body && err.body.existing;
      if (err.status !== 409 || !existing) return errorBox(err.message);
      const lookAlike = existing.confidence !== undefined && existing.confidence !== null;
      const them = el("button", { type: "button", class: "secondary", text: `They are ${existing.name}`,
        onclick: () => name({ identityId: existing.id }) });
      if (!lookAlike) {
        return conflictBox(`A person named ${existing.name} already exists. Are ${count === 1 ? "this face" : "these faces"} theirs?`,
          existing, [them]);
      }
      const them2 = count === 1 ? "it" : "them";
      them.textContent = count === 1 ? `It is ${existing.name}` : `They are ${existing.name}`;
      return conflictBox(`${looksLikeText(existing, count)} Name ${them2} ${existing.name}, or enroll ${typed} as a new person anyway.`,
        existing, [them, el("button", { type: "button", text: `Name ${them2} ${typed} anyway`, onclick: () => name({ force: true }) })]);
    }

    ignoreButton.addEventListener("click", () => {
      const ids = cluster.faces.map((face) => face.face_id).filter((faceId) => included.has(faceId));
      dismiss(ids, `${plural(ids.length, "face")} of ${label} dismissed: they stay in the batch as Unknown.`);
    });
    row.append(
      el("form", { class: "row cluster-form", onsubmit: (event) => { event.preventDefault(); name(); } },
        el("label", { for: inputId, text: "Who is this?" }), input, nameButton, ignoreButton),
      feedback,
    );
    return row;
  }

  return {
    section,
    load: async () => {
      await Promise.all([loadPeople(), load()]);
    },
    reload: load,
  };
}

async function renderBatch(batchId, params) {
  const title = `Batch ${batchId}`;
  render(title, el("p", { class: "muted", text: "Loading…" }));
  const path = `/api/batch-photos/logs/${encodeURIComponent(batchId)}`;
  let log;
  try {
    log = await api(path);
  } catch (err) {
    return render(title, errorBox(err.message));
  }
  const admin = Boolean(state.me && state.me.role === "admin");
  let people = null; // fetched when a face is first corrected
  const summaryHolder = el("div");
  const status = el("div", { id: "batch-status", role: "status" });
  const tableHolder = el("div");
  const filter = el(
    "select",
    { id: "filter", onchange: () => show() },
    el("option", { value: "all", text: "All photos" }),
    el("option", { value: "recognized", text: "Recognised" }),
    el("option", { value: "unknown", text: "Unknown" }),
  );
  const personFilter = el("select", { id: "person-filter", onchange: () => show() });
  // Naming a group of unknown faces relabels the batch's entries: the log is read again.
  const unknown = unknownPeoplePanel(batchId, admin, async () => {
    people = null;
    try {
      log = await api(path);
    } catch (err) {
      return fill(status, errorBox(err.message));
    }
    refresh();
  });

  function show() {
    const which = filter.value;
    const who = personFilter.value;
    const rows = log.entries
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry }) => which === "all" || (which === "recognized") === entry.recognized)
      .filter(({ entry }) => !who || entry.people.some((p) => p.person === who));
    fill(tableHolder, rows.length ? batchTable(rows, admin ? correct : null) : el("p", { class: "muted", text: "No entries." }));
  }

  function refresh() {
    fill(summaryHolder, summaryStats(log.summary));
    const chosen = personFilter.value;
    fill(personFilter, el("option", { value: "", text: "Anyone" }),
      log.summary.persons_list.map((name) => el("option", { value: name, text: name })));
    personFilter.value = log.summary.persons_list.includes(chosen) ? chosen : "";
    show();
  }

  async function correct(entryIndex, faceIndex) {
    const entry = log.entries[entryIndex];
    const face = entry.faces[faceIndex];
    const opener = document.activeElement;
    if (!people) {
      try {
        people = await allPeople();
      } catch (err) {
        return fill(status, errorBox(err.message));
      }
    }
    let saved = false;
    correctionDialog({
      entry,
      face,
      faceIndex,
      people,
      save: async (choice) => {
        const updated = await api(`${path}/entries/${entryIndex}/faces/${faceIndex}`, { method: "PATCH", json: choice });
        log.entries[entryIndex] = updated;
        try {
          log = await api(path); // the summary follows the correction
        } catch {
          /* the entry is updated; the summary shows as it was */
        }
        if (choice.add_to_gallery) people = null; // face counts changed
        saved = true;
        refresh();
        unknown.reload(); // the face may have joined or left the unknown ones
        const now = updated.faces[faceIndex];
        fill(status, el("p", { class: "notice", text:
          `Face ${faceIndex + 1} of ${entry.filename} is now ${now.person}${choice.add_to_gallery ? ", and was added to their gallery" : ""}.` }));
      },
      closed: () => {
        const again = saved ? main.querySelector(`[data-correct="${entryIndex}-${faceIndex}"]`) : opener;
        if (again && again.isConnected) again.focus();
      },
    });
  }

  render(
    title,
    el("p", { class: "muted", text: `Created ${formatDate(log.created_at)} · threshold ${log.threshold}` }),
    summaryHolder,
    el("div", { class: "row" }, downloadLink(batchId)),
    el("div", { class: "row" },
      el("label", { for: "filter", text: "Show" }), filter,
      el("label", { for: "person-filter", text: "with person" }), personFilter),
    unknown.section,
    status,
    tableHolder,
    rejectedList(log.errors),
  );
  refresh();
  await unknown.load();
  const wanted = params && params.get("face") ? document.getElementById(`face-${params.get("face")}`) : null;
  if (wanted) {
    wanted.classList.add("highlight");
    wanted.scrollIntoView({ block: "center" });
  }
}

// ----- people (admin) ------------------------------------------------------------------------------
function adminOnly(title) {
  if (state.me && state.me.role === "admin") return false;
  render(title, el("p", { class: "notice", text: "Managing people needs an admin token." }));
  return true;
}

// A message for the next page shown (after deleting a person from their own page, the list says so).
let flash = null;

function takeFlash() {
  const message = flash;
  flash = null;
  return message ? el("p", { class: "notice", role: "status", text: message }) : null;
}

// The API's reasons speak to programs ("send force=true ..."); the page offers a button for that instead.
function plainReason(text) {
  return text.replace(/;? *send force=true to [^.;]*/i, "").replace(/\s+$/, "");
}

function canForce(rejected) {
  return rejected.can_force === true;
}

function enrollmentReport(answer) {
  const items = [
    ...answer.enrolled.map((e) => el("li", {}, el("b", { text: e.filename }), e.note ? ` enrolled (${e.note})` : " enrolled")),
    ...answer.rejected.map((r) => el("li", { class: "error" }, el("b", { text: r.filename }), `: ${plainReason(r.error)}`)),
  ];
  return items.length ? el("ul", { id: "enrollment-report", class: "report" }, items) : null;
}

// The refused photos the API would take when told to (a face unlike the others), with a button to do so.
function forceOffer(answer, files, resend, label) {
  const names = answer.rejected.filter(canForce).map((r) => r.filename);
  const again = files.filter((file) => names.includes(file.name));
  if (!again.length) return null;
  return el("div", { class: "row" }, el("button", {
    type: "button",
    class: "secondary",
    text: again.length === 1 ? `${label} ${again[0].name} anyway` : `${label} these ${again.length} photos anyway`,
    onclick: () => resend(again),
  }));
}

const QUALITY_WORDS = { SMALL_FACE: "too small", LOW_DETECTION_SCORE: "unclear", BLURRY: "blurred", EXTREME_POSE: "turned away" };

function qualityText(issues) {
  return (issues || []).map((issue) => QUALITY_WORDS[issue] || issue.toLowerCase().replaceAll("_", " ")).join(", ");
}

// A photo of several faces, for choosing the one that is the person: each face is a button over its box ("Face 1"
// is the largest), placed in the photo's EXIF-oriented pixels like the boxes on results.
function faceChooser({ file, faces, name, choose, cancel }) {
  const src = URL.createObjectURL(file);
  const items = faces.map((face) => {
    const issues = qualityText(face.quality_issues);
    const text = `Face ${face.face + 1}${issues ? ` · ${issues}` : ""}`;
    const button = el("button", {
      type: "button",
      class: "face-pick",
      "data-face": String(face.face),
      title: issues ? `${text}: the API may refuse it` : `${text}${face.face === 0 ? " (the largest)" : ""}`,
      onclick: () => choose(face.face),
    }, el("span", { class: "face-label", text }));
    return el("li", { class: `face-box choice${issues ? " poor" : ""}` }, button);
  });
  const img = el("img", { alt: `${file.name}, ${plural(faces.length, "face")}`, class: "photo-img" });
  const list = el("ol", { class: "face-boxes", "aria-label": `Faces in ${file.name}` }, items);
  const frame = el("div", { class: "photo-frame chooser pending" }, img, list);
  img.addEventListener("load", () => {
    faces.forEach((face, index) => {
      const { left, top } = placeBox(items[index], face.box, img);
      items[index].classList.toggle("label-below", top < 0.08);
      items[index].classList.toggle("label-end", left > 0.6);
    });
    frame.classList.remove("pending");
    URL.revokeObjectURL(src);
  }, { once: true });
  img.addEventListener("error", () => {
    frame.classList.replace("pending", "broken");
    img.hidden = true;
    frame.prepend(el("p", { class: "muted", text: "This browser cannot show the photo; choose by number (Face 1 is the largest)." }));
    URL.revokeObjectURL(src);
  }, { once: true });
  img.src = src;
  const title = el("h3", { id: "choose-face-title", tabindex: "-1", text: `${file.name} holds ${faces.length} faces: which one is ${name}?` });
  return el(
    "section",
    { class: "face-chooser", id: "choose-face", "aria-labelledby": "choose-face-title" },
    title,
    el("p", { class: "muted small", text: "Click the face, or Tab to it and press Enter." }),
    frame,
    el("div", { class: "row" }, el("button", { type: "button", class: "secondary", text: "Cancel", onclick: cancel })),
  );
}

// A 409 with the person it is about: the API's conflict said plainly, a link to that person and the ways on.
function conflictBox(message, existing, actions) {
  return el(
    "div",
    { class: "error conflict", role: "alert" },
    el("p", { text: message }),
    el("div", { class: "row" },
      el("a", { class: "button secondary", href: `#/people/${existing.id}`, text: `Open ${existing.name}` }),
      actions),
  );
}

function looksLikeText(existing, count) {
  const who = count === 1 ? "This face looks" : "These faces look";
  return `${who} like ${existing.name} (confidence ${existing.confidence}%), who is already enrolled.`;
}

async function renderPeople(params) {
  if (adminOnly("People")) return;
  const query = params.get("q") || "";
  const notice = takeFlash();
  const listFeedback = el("div", { id: "list-feedback" }, notice);
  const search = el("input", { id: "search", type: "search", value: query, name: "q" });
  const searchForm = el(
    "form",
    { class: "row", role: "search", onsubmit: (event) => { event.preventDefault(); location.hash = `#/people?q=${encodeURIComponent(search.value)}`; } },
    el("label", { for: "search", text: "Search by name" }), search, el("button", { type: "submit", class: "secondary", text: "Search" }),
    query ? el("a", { href: "#/people", text: "Everyone" }) : null,
  );

  const feedback = el("div", { id: "people-feedback" });
  const nameInput = el("input", { id: "new-name", type: "text", required: true, maxlength: 255 });
  const photosInput = el("input", { id: "new-photos", type: "file", multiple: true, accept: "image/*", required: true });
  const enrollButton = el("button", { type: "submit", text: "Enroll" });

  const clearForm = () => {
    nameInput.value = "";
    photosInput.value = "";
  };

  // One enrollment request; a group photo, a taken name or a look-alike face asks the user how to go on.
  async function enroll(request) {
    const body = new FormData();
    body.append("name", request.name);
    for (const file of request.files) body.append("photos[]", file, file.name);
    if (request.face !== undefined) body.append("face", String(request.face));
    if (request.force) body.append("force", "true");
    enrollButton.disabled = true;
    fill(feedback, el("p", { class: "muted", text: "Enrolling…" }));
    try {
      const answer = await api("/api/identities", { method: "POST", form: body });
      const who = answer.identity;
      if (request.face !== undefined) {
        for (const e of answer.enrolled) e.note = e.note || `face ${request.face + 1}`;
      }
      fill(feedback,
        el("p", { class: "notice", role: "status" }, `Enrolled ${who.name}. `,
          el("a", { href: `#/people/${who.id}`, text: `Open ${who.name}` })),
        enrollmentReport(answer),
        forceOffer(answer, request.files, (again) => addTo(who, again, true), `Add`));
      clearForm();
      await listPeople();
    } catch (err) {
      enrollFailed(err, request);
    } finally {
      enrollButton.disabled = false;
    }
  }

  function enrollFailed(err, request) {
    const body = err.body || {};
    if (err.status === 400 && Array.isArray(body.faces) && body.faces.length) {
      const file = request.files.find((f) => err.message.startsWith(`${f.name} holds `)) || request.files[0];
      fill(feedback, faceChooser({
        file,
        faces: body.faces,
        name: request.name,
        choose: (face) => enroll({ ...request, files: [file], face, faces: body.faces }),
        cancel: () => fill(feedback),
      }));
      document.getElementById("choose-face-title").focus();
      return;
    }
    if (err.status === 409 && body.existing) {
      const existing = body.existing;
      const lookAlike = existing.confidence !== undefined && existing.confidence !== null;
      const add = el("button", { type: "button", class: "secondary", text: `Add the photos to ${existing.name}`,
        onclick: () => addTo(existing, request.files, false) });
      const anyway = lookAlike
        ? el("button", { type: "button", text: "Enroll anyway", onclick: () => enroll({ ...request, force: true }) })
        : null;
      const message = lookAlike
        ? `${looksLikeText(existing, 1)} Add the photos to them, or enroll ${request.name} as a new person anyway.`
        : `A person named ${existing.name} already exists. Add the photos to them, or choose another name.`;
      fill(feedback, conflictBox(message, existing, [add, anyway]));
      return;
    }
    fill(feedback, errorBox(err.message), body.rejected ? enrollmentReport({ enrolled: [], rejected: body.rejected }) : null,
      body.rejected ? forceOffer({ rejected: body.rejected }, request.files, () => enroll({ ...request, force: true }), "Enroll") : null,
      // A face chosen in a group photo and refused (too small, blurred...): the others can still be chosen.
      request.faces ? faceChooser({
        file: request.files[0],
        faces: request.faces,
        name: request.name,
        choose: (face) => enroll({ ...request, face }),
        cancel: () => fill(feedback),
      }) : null);
  }

  // The photos join an enrolled person instead (a taken name, a look-alike face, or photos refused as unlike).
  async function addTo(person, files, force) {
    const body = new FormData();
    for (const file of files) body.append("photos[]", file, file.name);
    if (force) body.append("force", "true");
    enrollButton.disabled = true;
    fill(feedback, el("p", { class: "muted", text: `Adding to ${person.name}…` }));
    try {
      const answer = await api(`/api/identities/${person.id}/photos`, { method: "POST", form: body });
      fill(feedback,
        el("p", { class: "notice", role: "status" },
          `Added ${plural(answer.enrolled.length, "photo")} to ${answer.identity.name}. `,
          el("a", { href: `#/people/${person.id}`, text: `Open ${answer.identity.name}` })),
        enrollmentReport(answer),
        forceOffer(answer, files, (again) => addTo(person, again, true), "Add"));
      clearForm();
      await listPeople();
    } catch (err) {
      const rejected = err.body && err.body.rejected;
      fill(feedback, errorBox(err.message), rejected ? enrollmentReport({ enrolled: [], rejected }) : null,
        rejected ? forceOffer({ rejected }, files, (again) => addTo(person, again, true), "Add") : null);
    } finally {
      enrollButton.disabled = false;
    }
  }

  const enrollForm = el(
    "form",
    {
      class: "card",
      id: "enroll-form",
      onsubmit: (event) => {
        event.preventDefault();
        enroll({ name: nameInput.value, files: Array.from(photosInput.files) });
      },
    },
    el("h2", { text: "Enroll a new person" }),
    el("label", { for: "new-name", text: "Name" }), nameInput,
    el("label", { for: "new-photos", text: "Photos of them" }), photosInput,
    el("p", { class: "muted small", text: "Several photos help. In a photo of several people you will be asked which face is theirs." }),
    el("div", { class: "row" }, enrollButton),
    feedback,
  );

  const list = el("div", { id: "people" }, el("p", { class: "muted", text: "Loading…" }));
  async function listPeople() {
    let page;
    try {
      page = await api(`/api/identities?limit=200&q=${encodeURIComponent(query)}`);
    } catch (err) {
      return fill(list, errorBox(err.message));
    }
    if (!page.identities.length) {
      return fill(list, el("p", { class: "muted", id: "people-count", text: query ? `No one matches “${query}”.` : "Nobody enrolled yet." }));
    }
    const rows = await Promise.all(page.identities.map(async (person) => el(
      "tr",
      { "data-person": String(person.id) },
      el("td", {}, person.thumbnail_url ? await authedImage(person.thumbnail_url, "", "thumb") : null),
      el("td", {}, el("a", { href: `#/people/${person.id}`, class: "person-name", text: person.name })),
      el("td", { class: "face-count", text: plural(person.face_count, "face") }),
      el("td", {}, el("a", { href: `#/people/${person.id}/appearances`, class: "appearances-link", text: "Appearances",
        "aria-label": `Appearances of ${person.name}` })),
      el("td", {}, el("button", {
        type: "button",
        class: "danger",
        text: "Delete",
        "aria-label": `Delete ${person.name}`,
        onclick: async () => {
          if (!confirm(`Delete ${person.name} and all their faces?`)) return;
          try {
            await api(`/api/identities/${person.id}`, { method: "DELETE" });
            fill(listFeedback, el("p", { class: "notice", role: "status", text: `Deleted ${person.name}.` }));
            await listPeople();
          } catch (err) {
            fill(listFeedback, errorBox(err.message));
          }
        },
      })),
    )));
    const count = plural(page.total, "person", "people");
    const shown = page.identities.length < page.total ? ` (the first ${page.identities.length} shown)` : "";
    fill(list,
      el("p", { class: "muted", id: "people-count", text: `${query ? `${count} matching “${query}”` : count}${shown}` }),
      el("div", { class: "table-wrap" }, el("table", {}, el("tbody", {}, rows))),
    );
  }
  render("People", searchForm, listFeedback, list, enrollForm);
  await listPeople();
}

async function renderPerson(id) {
  if (adminOnly("Person")) return;
  let person;
  try {
    person = (await api(`/api/identities/${encodeURIComponent(id)}`)).identity;
  } catch (err) {
    return render("Person", errorBox(err.message));
  }
  const feedback = el("div", { id: "person-feedback" });
  const topFeedback = el("div", { id: "person-status" });

  async function deletePerson() {
    try {
      await api(`/api/identities/${person.id}`, { method: "DELETE" });
    } catch (err) {
      return fill(topFeedback, errorBox(err.message));
    }
    flash = `Deleted ${person.name}.`;
    location.hash = "#/people";
  }

  const nameInput = el("input", { id: "rename", type: "text", value: person.name, required: true, maxlength: 255 });
  const renameForm = el(
    "form",
    {
      class: "row",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api(`/api/identities/${person.id}`, { method: "PATCH", json: { name: nameInput.value } });
          renderPerson(id);
        } catch (err) {
          const existing = err.status === 409 && err.body && err.body.existing;
          fill(topFeedback, existing && existing.id !== person.id
            ? conflictBox(`A person named ${existing.name} already exists: choose another name.`, existing, [])
            : errorBox(err.message));
        }
      },
    },
    el("label", { for: "rename", text: "Name" }), nameInput, el("button", { type: "submit", class: "secondary", text: "Rename" }),
  );
  const faces = await Promise.all(person.faces.map(async (face) => el(
    "div",
    { class: "face" },
    await authedImage(face.thumbnail_url, `face ${face.id}`, "thumb"),
    el("div", { class: "filename", text: face.filename }),
    el("button", {
      type: "button",
      class: "danger",
      text: "Delete face",
      onclick: async () => {
        if (!confirm(`Delete this face (${face.filename})?`)) return;
        try {
          await api(`/api/identities/${person.id}/faces/${face.id}`, { method: "DELETE" });
        } catch (err) {
          return fill(topFeedback, errorBox(err.message));
        }
        await renderPerson(id);
        if (person.faces.length === 1) lastFaceGone(person);
      },
    }),
  )));

  const addInput = el("input", { id: "add-photos", type: "file", multiple: true, accept: "image/*", required: true });
  async function addPhotos(files, force) {
    const body = new FormData();
    for (const file of files) body.append("photos[]", file, file.name);
    if (force) body.append("force", "true");
    // The page is drawn again after a success, so its feedback holder is looked up each time.
    const holder = () => document.getElementById("person-feedback") || feedback;
    fill(holder(), el("p", { class: "muted", text: "Adding…" }));
    try {
      const answer = await api(`/api/identities/${person.id}/photos`, { method: "POST", form: body });
      await renderPerson(id);
      fill(holder(),
        el("p", { class: "notice", role: "status", text: `Added ${plural(answer.enrolled.length, "photo")}.` }),
        enrollmentReport(answer),
        forceOffer(answer, files, (again) => addPhotos(again, true), "Add"));
    } catch (err) {
      const rejected = err.body && err.body.rejected;
      fill(holder(), errorBox(err.message), rejected ? enrollmentReport({ enrolled: [], rejected }) : null,
        rejected ? forceOffer({ rejected }, files, (again) => addPhotos(again, true), "Add") : null);
    }
  }
  const addForm = el(
    "form",
    {
      class: "card",
      id: "add-form",
      onsubmit: (event) => {
        event.preventDefault();
        addPhotos(Array.from(addInput.files), false);
      },
    },
    el("label", { for: "add-photos", text: "Add photos" }), addInput,
    el("p", { class: "muted small", text: `In each photo the face most like ${person.name} is used.` }),
    el("div", { class: "row" }, el("button", { type: "submit", text: "Add" })),
    feedback,
  );
  render(person.name,
    el("p", { class: "row" }, el("a", { href: "#/people", text: "← People" }),
      el("a", { href: `#/people/${person.id}/appearances`, text: `Where ${person.name} appears` })),
    renameForm,
    topFeedback,
    el("h2", { id: "face-count", text: plural(person.face_count, "face") }),
    person.faces.length
      ? el("div", { class: "faces" }, faces)
      : el("p", { class: "muted", text: `No faces: nobody is recognised as ${person.name} until photos are added.` }),
    addForm,
    el("div", { class: "row danger-zone" }, el("button", {
      type: "button",
      class: "danger",
      id: "delete-person",
      text: "Delete person",
      onclick: () => {
        if (confirm(`Delete ${person.name} and all their faces?`)) deletePerson();
      },
    })),
  );
}

// A person's last face was deleted: nobody can be recognised as them any more, so deleting them is offered.
function lastFaceGone(person) {
  const holder = document.getElementById("person-status");
  if (!holder) return;
  const yes = el("button", {
    type: "button",
    class: "danger",
    text: `Delete ${person.name}`,
    onclick: async () => {
      try {
        await api(`/api/identities/${person.id}`, { method: "DELETE" });
      } catch (err) {
        return fill(holder, errorBox(err.message));
      }
      flash = `Deleted ${person.name}.`;
      location.hash = "#/people";
    },
  });
  fill(holder, el(
    "div",
    { class: "offer", role: "alert" },
    el("p", { text: `That was ${person.name}'s last face. Delete ${person.name} too?` }),
    el("div", { class: "row" }, yes,
      el("button", { type: "button", class: "secondary", text: `Keep ${person.name}`, onclick: () => fill(holder) })),
  ));
  yes.focus();
}

const APPEARANCES_PAGE = 40;

async function renderAppearances(id, params) {
  if (adminOnly("Appearances")) return;
  const offset = Math.max(0, Number(params.get("offset") || 0));
  render("Appearances", el("p", { class: "muted", text: "Loading…" }));
  let person;
  let page;
  try {
    [person, page] = await Promise.all([
      api(`/api/identities/${encodeURIComponent(id)}`).then((answer) => answer.identity),
      api(`/api/identities/${encodeURIComponent(id)}/appearances?limit=${APPEARANCES_PAGE}&offset=${offset}`),
    ]);
  } catch (err) {
    return render("Appearances", errorBox(err.message));
  }
  const cards = page.appearances.map((seen) => el(
    "li",
    { class: "appearance face-card", "data-batch": seen.batch_id },
    apiImage(seen.crop_url, `${person.name} in ${seen.filename}`, "crop"),
    el("b", { class: "filename", text: seen.filename }),
    el("span", { class: "face-confidence" },
      seen.confidence === null ? "–" : `${seen.confidence}%`,
      seen.confidence === null ? null : confidenceBar(seen.confidence)),
    seen.corrected ? el("span", { class: "badge", text: "corrected" }) : null,
    el("span", { class: "muted small", text: `Face ${seen.face + 1} · ${formatDate(seen.timestamp)}` }),
    el("a", { href: `#/batches/${encodeURIComponent(seen.batch_id)}?face=${seen.face_id}`, class: "batch-link",
      text: `Batch ${seen.batch_id}` }),
  ));
  const base = `#/people/${person.id}/appearances`;
  const pager = el(
    "div",
    { class: "row" },
    offset > 0 ? el("a", { class: "button secondary", href: `${base}?offset=${Math.max(0, offset - APPEARANCES_PAGE)}`, text: "Newer" }) : null,
    offset + APPEARANCES_PAGE < page.total ? el("a", { class: "button secondary", href: `${base}?offset=${offset + APPEARANCES_PAGE}`, text: "Older" }) : null,
  );
  const batches = new URLSearchParams({ person: String(person.id), name: person.name });
  render(
    `Appearances of ${person.name}`,
    el("p", { class: "row" },
      el("a", { href: "#/people", text: "← People" }),
      el("a", { href: `#/people/${person.id}`, text: person.name }),
      el("a", { href: `#/batches?${batches}`, text: `Batches with ${person.name}` })),
    el("p", { class: "muted", id: "appearance-count", text: `${plural(page.total, "appearance")} in batches, newest first` }),
    page.appearances.length
      ? el("ul", { class: "face-cards appearances", id: "appearances", "aria-label": `Appearances of ${person.name}` }, cards)
      : el("p", { class: "muted", text: `${person.name} has not been recognised in any batch yet.` }),
    pager,
  );
}

// ----- routing -------------------------------------------------------------------------------------
async function route() {
  const [path, queryString] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(queryString || "");
  const parts = path.split("/").filter(Boolean);
  if (!state.token) {
    updateNav();
    return renderSignIn();
  }
  if (!state.me) {
    try {
      state.me = await api("/api/auth/me");
    } catch (err) {
      return signOut(`Sign-in failed: ${err.message}`);
    }
  }
  updateNav();
  try {
    if (parts[0] === "batches" && parts[1]) await renderBatch(decodeURIComponent(parts[1]), params);
    else if (parts[0] === "batches") await renderBatches(params);
    else if (parts[0] === "people" && parts[1] && parts[2] === "appearances") await renderAppearances(parts[1], params);
    else if (parts[0] === "people" && parts[1]) await renderPerson(parts[1]);
    else if (parts[0] === "people") await renderPeople(params);
    else renderRecognize();
  } catch (err) {
    render("Something went wrong", errorBox(err.message));
  }
  main.focus({ preventScroll: true });
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
