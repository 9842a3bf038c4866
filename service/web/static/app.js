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

function downloadLink(batchId) {
  const path = `/api/batch-photos/logs/${encodeURIComponent(batchId)}/export`;
  const status = el("span", { class: "muted" });
  const link = el("a", {
    href: path,
    class: "button secondary",
    text: "Download CSV",
    onclick: (event) => {
      event.preventDefault();
      fill(status);
      download(path, `batch_${batchId}.csv`).catch((err) => fill(status, errorBox(err.message)));
    },
  });
  return [link, status];
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

// ----- session -------------------------------------------------------------------------------------
function keepToken(token, remember) {
  // One place only, so signing in again without "remember" does not leave an older token on the device.
  (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  (remember ? sessionStorage : localStorage).removeItem(TOKEN_KEY);
}

function signOut(message) {
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
  const stat = (label, value) => el("div", { class: "stat" }, el("b", { text: String(value) }), label);
  return el(
    "div",
    { class: "stats", id: "summary" },
    stat("photos", summary.total_photos),
    stat("recognised", summary.recognized_count),
    stat("unknown", summary.unrecognized_count),
    stat("recognition rate", `${summary.recognition_rate}%`),
    stat("average confidence", summary.avg_confidence),
    stat("people", summary.persons_list.join(", ") || "–"),
  );
}

function matchesList(matches) {
  if (!matches.length) return el("span", { class: "muted", text: "no match" });
  return el(
    "ol",
    { class: "matches" },
    matches.map((m) => el("li", {}, `${m.person} ${m.confidence}%`, confidenceBar(m.confidence))),
  );
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
      el("td", { class: "optional", text: String(entry.metadata.processing_time_ms) }),
    );
  });
  return el("div", { class: "table-wrap" }, el("table", { id: "entries" }, el("thead", {}, head), el("tbody", {}, rows)));
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
    chosen.textContent = files.length ? `${files.length} photo(s) chosen.` : "No photos chosen.";
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
          const previews = matchPreviews(files, answer.errors, log.entries);
          fill(results, 
            el("h2", { text: `Batch ${answer.batch_id}` }),
            summaryStats(answer.summary),
            el("div", { class: "row" }, downloadLink(answer.batch_id),
              el("a", { class: "button secondary", href: `#/batches/${answer.batch_id}`, text: "Open batch" })),
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
  render("Batches", el("p", { class: "muted", text: "Loading…" }));
  let page;
  try {
    page = await api(`/api/batch-photos/logs?limit=${PAGE_SIZE}&offset=${offset}`);
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
    : el("p", { class: "muted", text: "No batches yet." });
  const pager = el(
    "div",
    { class: "row" },
    offset > 0 ? el("a", { class: "button secondary", href: `#/batches?offset=${Math.max(0, offset - PAGE_SIZE)}`, text: "Newer" }) : null,
    offset + PAGE_SIZE < page.total ? el("a", { class: "button secondary", href: `#/batches?offset=${offset + PAGE_SIZE}`, text: "Older" }) : null,
    el("span", { class: "muted", text: `${page.total} batch(es)` }),
  );
  render("Batches", feedback, table, pager);
}

async function renderBatch(batchId) {
  render(`Batch ${batchId}`, el("p", { class: "muted", text: "Loading…" }));
  let log;
  try {
    log = await api(`/api/batch-photos/logs/${encodeURIComponent(batchId)}`);
  } catch (err) {
    return render(`Batch ${batchId}`, errorBox(err.message));
  }
  const tableHolder = el("div");
  const show = (which) => {
    const entries = log.entries.filter((e) => which === "all" || (which === "recognized") === e.recognized);
    fill(tableHolder, entries.length ? entriesTable(entries, null) : el("p", { class: "muted", text: "No entries." }));
  };
  const filter = el(
    "select",
    { id: "filter", onchange: (event) => show(event.target.value) },
    el("option", { value: "all", text: "All photos" }),
    el("option", { value: "recognized", text: "Recognised" }),
    el("option", { value: "unknown", text: "Unknown" }),
  );
  render(
    `Batch ${batchId}`,
    el("p", { class: "muted", text: `Created ${formatDate(log.created_at)} · threshold ${log.threshold}` }),
    summaryStats(log.summary),
    el("div", { class: "row" }, downloadLink(batchId), el("label", { for: "filter", text: "Show" }), filter),
    tableHolder,
    rejectedList(log.errors),
  );
  show("all");
}

// ----- people (admin) ------------------------------------------------------------------------------
function adminOnly(title) {
  if (state.me && state.me.role === "admin") return false;
  render(title, el("p", { class: "notice", text: "Managing people needs an admin token." }));
  return true;
}

function enrollmentReport(answer) {
  const items = [
    ...answer.enrolled.map((e) => el("li", {}, el("b", { text: e.filename }), e.note ? ` enrolled (${e.note})` : " enrolled")),
    ...answer.rejected.map((r) => el("li", { class: "error" }, el("b", { text: r.filename }), `: ${r.error}`)),
  ];
  return el("ul", { id: "enrollment-report" }, items);
}

async function renderPeople(params) {
  if (adminOnly("People")) return;
  const query = params.get("q") || "";
  const feedback = el("div", { id: "people-feedback" });
  const search = el("input", { id: "search", type: "search", value: query, name: "q" });
  const searchForm = el(
    "form",
    { class: "row", role: "search", onsubmit: (event) => { event.preventDefault(); location.hash = `#/people?q=${encodeURIComponent(search.value)}`; } },
    el("label", { for: "search", text: "Search by name" }), search, el("button", { type: "submit", class: "secondary", text: "Search" }),
  );

  const nameInput = el("input", { id: "new-name", type: "text", required: true, maxlength: 255 });
  const photosInput = el("input", { id: "new-photos", type: "file", multiple: true, accept: "image/*", required: true });
  const enrollButton = el("button", { type: "submit", text: "Enroll" });
  const enrollForm = el(
    "form",
    {
      class: "card",
      id: "enroll-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = new FormData();
        body.append("name", nameInput.value);
        for (const file of photosInput.files) body.append("photos[]", file, file.name);
        enrollButton.disabled = true;
        fill(feedback, el("p", { class: "muted", text: "Enrolling…" }));
        try {
          const answer = await api("/api/identities", { method: "POST", form: body });
          fill(feedback, el("p", { class: "notice", text: `Enrolled ${answer.identity.name}.` }), enrollmentReport(answer));
          nameInput.value = "";
          photosInput.value = "";
          await listPeople();
        } catch (err) {
          fill(feedback, errorBox(err.message), err.body && err.body.rejected ? enrollmentReport({ enrolled: [], rejected: err.body.rejected }) : null);
        } finally {
          enrollButton.disabled = false;
        }
      },
    },
    el("h2", { text: "Enroll a new person" }),
    el("label", { for: "new-name", text: "Name" }), nameInput,
    el("label", { for: "new-photos", text: "Photos (one face each; the largest face is used)" }), photosInput,
    el("div", { class: "row" }, enrollButton),
  );

  const list = el("div", { id: "people" }, el("p", { class: "muted", text: "Loading…" }));
  async function listPeople() {
    let page;
    try {
      page = await api(`/api/identities?limit=200&q=${encodeURIComponent(query)}`);
    } catch (err) {
      return fill(list, errorBox(err.message));
    }
    if (!page.identities.length) return fill(list, el("p", { class: "muted", text: "Nobody enrolled yet." }));
    const rows = await Promise.all(page.identities.map(async (person) => el(
      "tr",
      { "data-person": String(person.id) },
      el("td", {}, person.thumbnail_url ? await authedImage(person.thumbnail_url, "", "thumb") : null),
      el("td", {}, el("a", { href: `#/people/${person.id}`, class: "person-name", text: person.name })),
      el("td", { text: `${person.face_count} face(s)` }),
      el("td", {}, el("button", {
        type: "button",
        class: "danger",
        text: "Delete",
        "aria-label": `Delete ${person.name}`,
        onclick: async () => {
          if (!confirm(`Delete ${person.name} and all their faces?`)) return;
          try {
            await api(`/api/identities/${person.id}`, { method: "DELETE" });
            await listPeople();
          } catch (err) {
            fill(feedback, errorBox(err.message));
          }
        },
      })),
    )));
    fill(list, 
      el("p", { class: "muted", text: `${page.total} people` }),
      el("div", { class: "table-wrap" }, el("table", {}, el("tbody", {}, rows))),
    );
  }
  render("People", searchForm, list, enrollForm, feedback);
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
          fill(feedback, errorBox(err.message));
        }
      },
    },
    el("label", { for: "rename", text: "Name" }), nameInput, el("button", { type: "submit", class: "secondary", text: "Rename" }),
  );
  const faces = await Promise.all(person.faces.map(async (face) => el(
    "div",
    { class: "face" },
    await authedImage(face.thumbnail_url, `face ${face.id}`, "thumb"),
    el("div", { text: face.filename }),
    el("button", {
      type: "button",
      class: "danger",
      text: "Delete face",
      onclick: async () => {
        if (!confirm(`Delete this face (${face.filename})?`)) return;
        try {
          await api(`/api/identities/${person.id}/faces/${face.id}`, { method: "DELETE" });
          renderPerson(id);
        } catch (err) {
          fill(feedback, errorBox(err.message));
        }
      },
    }),
  )));
  const addInput = el("input", { id: "add-photos", type: "file", multiple: true, accept: "image/*", required: true });
  const addForm = el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = new FormData();
        for (const file of addInput.files) body.append("photos[]", file, file.name);
        try {
          const answer = await api(`/api/identities/${person.id}/photos`, { method: "POST", form: body });
          await renderPerson(id);
          fill(document.getElementById("person-feedback"), enrollmentReport(answer));
        } catch (err) {
          fill(feedback, errorBox(err.message), err.body && err.body.rejected ? enrollmentReport({ enrolled: [], rejected: err.body.rejected }) : null);
        }
      },
    },
    el("label", { for: "add-photos", text: "Add photos" }), addInput, el("div", { class: "row" }, el("button", { type: "submit", text: "Add" })),
  );
  render(person.name, el("p", {}, el("a", { href: "#/people", text: "← People" })), renameForm,
    el("h2", { text: `${person.face_count} face(s)` }), el("div", { class: "faces" }, faces), addForm, feedback);
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
    if (parts[0] === "batches" && parts[1]) await renderBatch(decodeURIComponent(parts[1]));
    else if (parts[0] === "batches") await renderBatches(params);
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
