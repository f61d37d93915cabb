// smc web monitor. Plain DOM, no library. Every name, state and piece of job data reaches the
// page through textContent or setAttribute, never through innerHTML: whatever a machine is
// called, it shows as text. Diagrams are SVG the server rebuilt from a whitelist; they are
// parsed with DOMParser as XML and imported, not assigned as markup.
"use strict";

const S = {
  machines: new Map(), // name -> machine (registry row + live)
  types: new Map(), // key -> type summary (states, columns, template)
  svgs: new Map(), // key -> {card, svg} once fetched
  queue: {},
  history: false,
  feed: null, // where the live records come from: "history", "sockets" or null
  activity: [],
  activityKeys: new Set(), // activityKey of each entry of `activity`: none is shown twice
  // Whether the activity log was read: null not yet, true, or why it could not be (until
  // it is, the page says so, not "nothing to report" of a database "keeping no history").
  activityRead: null,
  jobTypes: new Set(),
  selectedJob: null,
  shownJob: null, // {id, dataText} of the job whose detail is open
  heldJobRows: null, // a list read while the reader points at the table, shown once they leave
  jobsForced: false, // the next list read answers the reader's own act: shown at once
  dirty: new Set(),
  frame: 0,
  offset: 0, // server clock minus ours
};
const ACTIVITY_KINDS = new Set([
  "error", "unhandled_event", "invalid_event", "job_failed", "job_retried", "event_dropped",
  "activity_log", "machine_started", "machine_stopped",
]);
// Records that show a machine exists and where it is: one the registry poll has not shown yet
// gets a row from them.
const MOVING_KINDS = new Set(["transition", "machine_started", "job_claimed"]);
const FEED_TITLES = {
  history: "Live from the database's history: every machine on every host.",
  sockets: "Live from the machines' monitor sockets on the server's host (the database keeps no history).",
};
const ACTIVITY_SHOWN = 300;

// ---- small helpers ---------------------------------------------------------------------

// Controls, bidi overrides and isolates, and line separators, as the CLI escapes them
// (smc.safe_text): a name or a job's data holding U+202E once showed the rest of its line
// reversed. Written as \u202e; newlines and tabs stay (the data's <pre> keeps its layout).
const UNSAFE_TEXT = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
function visible(text) {
  return text.replace(UNSAFE_TEXT, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// Every text the page writes from data goes through here, as a text node: never markup.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(String(child))));
  }
  return node;
}

function $(id) {
  return document.getElementById(id);
}

function now() {
  return Date.now() / 1000 + S.offset;
}

function clock(ts) {
  if (ts === null || ts === undefined) return "–";
  const d = new Date(ts * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A moment to the millisecond, with its local date unless it is today's (the activity log
// covers a day and more).
function stamp(ts) {
  if (ts === null || ts === undefined) return "–";
  const d = new Date(ts * 1000);
  return d.toDateString() === new Date().toDateString() ? clock(ts) : `${localDate(d)} ${clock(ts)}`;
}

function localDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// Machine names compared with the numbers in them as numbers.
const BY_NAME = new Intl.Collator(undefined, { numeric: true });

// The browser's local date and time (the time alone for today). The date is the local one
// too: toISOString's is UTC's, a day off around midnight anywhere else.
function dateTime(ts) {
  if (ts === null || ts === undefined) return "–";
  const d = new Date(ts * 1000);
  const today = new Date();
  const time = clock(ts).slice(0, 8);
  if (d.toDateString() === today.toDateString()) return time;
  return `${localDate(d)} ${time}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  if (seconds < 0) seconds = 0;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

function badge(text, kind) {
  const b = el("span", "badge", text);
  if (kind) b.classList.add(kind);
  return b;
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === "smc_csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

async function post(url) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-SMC-CSRF": csrfToken() },
  });
  let body = {};
  try {
    body = await response.json();
  } catch (_) {
    body = { error: `HTTP ${response.status}` };
  }
  return { ok: response.ok, body };
}

let toastTimer = 0;
function toast(text, bad) {
  const node = $("toast");
  // At most a few lines: a message quoting a 20,000-character id once covered the page.
  const shown = visible(String(text));
  node.textContent = shown.length > 400 ? `${shown.slice(0, 400)}…` : shown;
  node.classList.toggle("bad", Boolean(bad));
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 3500);
}

function transitionText(t) {
  if (!t) return "–";
  return el("span", "transition",
    String(t.from ?? "?"), el("span", "arrow", " —"), el("span", "event", String(t.event ?? "")),
    el("span", "arrow", "→ "), String(t.to ?? "?"));
}

// ---- state -----------------------------------------------------------------------------

function currentState(m) {
  return (m.live && m.live.state) || m.state;
}

// The time in state counts only while the machine runs: a stopped or dead one is in no
// state any more (it once went on counting).
function runningSince(m) {
  return m.status === "running" ? (sinceOf(m) ?? null) : null;
}

function sinceOf(m) {
  if (m.live && m.live.since) return m.live.since;
  return m.updated_at;
}

// A name's entry in a plain object keyed by names (states, task states) that come from the
// machines or the store: only the object's own entries, never what its prototype holds (a
// state named `constructor` or `toString` once found a function there and broke the page).
function own(object, name) {
  return object && Object.hasOwn(object, name) ? object[name] : undefined;
}

function activeStates(m) {
  // A statechart reports its whole configuration; otherwise the state and its ancestors.
  const states = new Set();
  if (m.live && Array.isArray(m.live.configuration)) {
    for (const s of m.live.configuration) states.add(s);
  }
  const state = currentState(m);
  if (state !== null && state !== undefined) {
    states.add(state);
    const type = S.types.get(m.type);
    for (const parent of (type && own(type.ancestors, state)) || []) states.add(parent);
  }
  return states;
}

// The state as the table says it: a parallel chart's state view (its parallel state) and,
// after it, the active leaf of each region, which the state alone does not tell.
function stateText(m) {
  const state = currentState(m) ?? "–";
  const configuration = m.live && Array.isArray(m.live.configuration) ? m.live.configuration : null;
  if (!configuration) return state;
  const type = S.types.get(m.type);
  const ancestors = (type && type.ancestors) || {};
  const parents = new Set();
  for (const s of configuration) for (const parent of own(ancestors, s) || []) parents.add(parent);
  const leaves = configuration.filter((s) => !parents.has(s) && s !== state);
  return leaves.length > 1 ? `${state} (${leaves.join(", ")})` : state;
}

function mergeMachine(row) {
  const old = S.machines.get(row.name);
  const merged = Object.assign({}, row);
  // The registry is written at most every 0.5 s; what the feed saw is newer.
  if (old && old.live && (!row.live || (old.live.since || 0) > (row.live.since || 0))) {
    merged.live = old.live;
  }
  S.machines.set(row.name, merged);
}

// One snapshot request at a time: a second ask while one is on its way waits for it and
// makes one more (so the answer is never older than the ask).
let stateLoad = null;
let stateAgain = false;
function loadState() {
  if (stateLoad) { stateAgain = true; return stateLoad; }
  stateLoad = fetchState().finally(() => {
    stateLoad = null;
    if (stateAgain) { stateAgain = false; loadState(); }
  });
  return stateLoad;
}

async function fetchState() {
  const data = await getJSON("/api/state");
  S.offset = data.now - Date.now() / 1000;
  S.history = data.history;
  S.feed = data.feed ?? null;
  $("connection").title = own(FEED_TITLES, S.feed) || "";
  S.queue = data.queue;
  for (const [key, type] of Object.entries(data.types)) S.types.set(key, type);
  const names = new Set();
  for (const row of data.machines) {
    names.add(row.name);
    mergeMachine(row);
  }
  for (const name of [...S.machines.keys()]) if (!names.has(name)) S.machines.delete(name);
  markDirty("machines", "diagrams", "board", "queue");
  await loadActivity();
  refreshJobs();
}

function applyRecord(r) {
  if (typeof r.kind !== "string") return;
  if (r.kind === "ui_resync") {
    // With a machine: its monitor socket closed under the server, and records of it may be
    // lost; what was seen of it goes, and the registry's row stands in until the next record.
    const m = typeof r.machine === "string" ? S.machines.get(r.machine) : undefined;
    if (m) m.live = null;
    loadState();
    return;
  }
  if (r.kind === "ui_machines") {
    const names = new Set();
    for (const row of r.machines) {
      names.add(row.name);
      mergeMachine(row);
      if (row.type && !S.types.has(row.type)) { loadState(); return; }
    }
    for (const name of [...S.machines.keys()]) if (!names.has(name)) S.machines.delete(name);
    markDirty("machines", "diagrams", "board");
    return;
  }
  if (r.kind === "ui_queue") { S.queue = r.counts; markDirty("queue"); refreshJobsSoon(); return; }
  if (r.kind === "ui_history") { for (const row of r.rows) addActivity(historyActivity(row)); return; }
  if (r.kind === "ui_error") { toast(r.message, true); return; }
  if (r.kind === "ui_machine_dead") {
    // Seen by the server's poll of the registry: a dead process writes no history row. The
    // log read when the page opened may have it already (from the registry, the same entry).
    addActivity({ ...liveActivity(r), kind: "machine_dead" });
    return;
  }
  if (typeof r.machine !== "string") return;
  let m = S.machines.get(r.machine);
  if (!m && r.kind === "transition" && r.source) {
    // A workflow task's move (machine "<workflow>/<task>", source its run id): the Workflows
    // section shows it; it is not a machine.
    noteActivity(r);
    return;
  }
  if (!m && !MOVING_KINDS.has(r.kind)) {
    // A row about a job or an event (its machine may be a job's type, or a machine that has
    // not started): nothing to move, only the activity log and the job list.
    if (r.kind === "job_added" || r.kind === "job_retried") refreshJobsSoon();
    noteActivity(r);
    return;
  }
  if (!m) {
    // A machine the registry poll has not shown yet: keep what the feed says.
    m = { name: r.machine, status: "running", state: null, live: null, type: null };
    S.machines.set(r.machine, m);
  }
  const live = m.live || (m.live = { state: m.state, since: null, last_transition: null, job_id: null, configuration: null });
  if (r.kind === "transition" || r.kind === "machine_started") {
    // A move to another state starts the time in it, even back to the state the page last
    // knew (the server passes on only a machine's last transition of each batch).
    // A parallel chart's region moving is a move too (from and to are the parallel state):
    // its time in state is the time since its configuration last changed.
    const regionMoved = Array.isArray(r.configuration) && Array.isArray(live.configuration)
      && r.configuration.join("\u0000") !== live.configuration.join("\u0000");
    if (r.to !== live.state || (r.kind === "transition" && r.from !== r.to) || regionMoved) live.since = r.ts;
    live.state = r.to;
    if (Array.isArray(r.configuration)) live.configuration = r.configuration;
    if (r.kind === "transition") live.last_transition = { from: r.from, event: r.event, to: r.to, ts: r.ts };
    if (r.kind === "machine_started") {
      // A new run: the last run's move and job are not this one's.
      m.status = "running";
      live.last_transition = null;
      live.job_id = null; m.job_id = null;
      live.configuration = Array.isArray(r.configuration) ? r.configuration : null;
    }
    m.flash = true;
    markDirty("machines", "diagrams", "board");
  } else if (r.kind === "job_claimed") {
    live.job_id = r.job_id; m.job_id = r.job_id;
    markDirty("machines", "board");
    refreshJobsSoon();
  } else if (["job_completed", "job_failed", "job_retried", "job_released"].includes(r.kind)) {
    // Done, failed, back to pending for another attempt, or given back: no longer the machine's.
    if (live.job_id === r.job_id) { live.job_id = null; m.job_id = null; }
    markDirty("machines", "board");
    refreshJobsSoon();
  } else if (r.kind === "machine_stopped") {
    m.status = "stopped";
    markDirty("machines", "board");
  } else if (r.kind === "job_added") {
    refreshJobsSoon();
  }
  noteActivity(r);
}

function noteActivity(r) {
  if (ACTIVITY_KINDS.has(r.kind)) {
    // A record of the history feed carries its row's id: it is a history row, shown as the
    // activity log's fetched rows are (so a refetch finds it the same). A socket record is
    // shown only when the database keeps no history (else the history poll brings it).
    if (r.id !== undefined && r.id !== null) addActivity(historyActivity(rowOf(r)));
    else if (!S.history) addActivity(liveActivity(r));
  }
}

// A record of the history feed (smc.runtime.history.history_record) as its history row.
function rowOf(r) {
  return {
    id: r.id, ts: r.ts, machine: r.machine, kind: r.kind, from_state: r.from, event: r.event,
    to_state: r.to, job_id: r.job_id, attempt: r.attempt, trace_id: r.trace_id,
    source: r.source, excerpt: r.error ?? r.excerpt ?? null,
  };
}

// ---- rendering, at most once a frame -----------------------------------------------------

// At most one redraw every RENDER_INTERVAL ms, in an animation frame: 50 machines making 2,000
// transitions a second cost ten redraws a second, not 2,000 (or 60).
const RENDER_INTERVAL = 100;
let lastRender = 0;

function markDirty(...parts) {
  for (const p of parts) S.dirty.add(p);
  if (S.frame) return;
  const wait = Math.max(0, lastRender + RENDER_INTERVAL - performance.now());
  S.frame = setTimeout(() => requestAnimationFrame(render), wait);
}

function render() {
  S.frame = 0;
  lastRender = performance.now();
  const dirty = S.dirty;
  S.dirty = new Set();
  if (dirty.has("machines")) renderMachines();
  if (dirty.has("diagrams")) renderDiagrams();
  if (dirty.has("board")) renderBoard();
  if (dirty.has("queue")) renderQueue();
  if (dirty.has("activity")) renderActivity();
}

function sortedMachines() {
  // Numbers in names in their order: order-2 before order-10.
  return [...S.machines.values()].sort((a, b) => BY_NAME.compare(a.name, b.name));
}

function renderMachines() {
  const body = $("machine-table").tBodies[0];
  const rows = [];
  const machines = sortedMachines();
  for (const m of machines) {
    const type = S.types.get(m.type);
    const tr = el("tr");
    tr.setAttribute("data-machine", m.name);
    if (m.flash) { tr.classList.add("flash"); m.flash = false; }
    const job = (m.live && m.live.job_id) || m.job_id;
    const inState = el("td", "in-state");
    const since = runningSince(m);
    // A row whose machine shows the same is kept (a name or a job id selected in it, to
    // copy, stays selected: every row was replaced each time any machine moved).
    const shownState = stateText(m);
    tr.shown = JSON.stringify([m.name, m.status, shownState, since,
      m.live && m.live.last_transition, job, m.host, m.pid, type ? type.name : null, tr.className]);
    inState.setAttribute("data-since", String(since ?? ""));
    inState.textContent = since === null ? "–" : duration(now() - since);
    const state = el("td", "state", shownState);
    tr.append(
      el("td", "name", m.name),
      el("td", null, badge(m.status, m.status)),
      state,
      inState,
      el("td", null, transitionText(m.live && m.live.last_transition)),
      el("td", "mono id", job ?? "–"),
      el("td", null, m.host ?? "–"),
      el("td", "mono", m.pid ?? "–"),
      el("td", null, type ? type.name || "" : "–"),
    );
    rows.push(tr);
  }
  keepRows(body, rows);
  $("machines-empty").hidden = machines.length > 0;
  $("machine-count").textContent = machines.length ? `(${machines.length})` : "";
}

function tickTimes() {
  for (const cell of document.querySelectorAll("[data-since]")) {
    const since = parseFloat(cell.getAttribute("data-since"));
    const text = isFinite(since) ? duration(now() - since) : "–";
    if (cell.textContent !== text) cell.textContent = text;
  }
}

function machinesByType() {
  const byType = new Map();
  for (const m of sortedMachines()) {
    if (!m.type) continue;
    if (!byType.has(m.type)) byType.set(m.type, []);
    byType.get(m.type).push(m);
  }
  return byType;
}

function renderDiagrams() {
  const list = $("diagram-list");
  const byType = machinesByType();
  for (const [key, machines] of byType) {
    let entry = S.svgs.get(key);
    if (!entry) {
      entry = { card: el("div", "diagram-card"), svg: null, legend: el("ul", "legend"), loading: false };
      entry.card.setAttribute("data-type", key);
      const known = S.types.get(key);
      entry.card.setAttribute("data-name", known ? known.name || "" : "");
      S.svgs.set(key, entry);
      list.append(entry.card);
      loadDiagram(key, entry);
    }
    const lit = new Map(); // state -> machines in it
    for (const m of machines) {
      // Lit: the states running machines are in now. A stopped or dead one is in no state
      // any more (the legend still says where it was); a stopped one was once lit on.
      if (m.status !== "running") continue;
      for (const s of activeStates(m)) {
        if (!lit.has(s)) lit.set(s, []);
        lit.get(s).push(m.name);
      }
    }
    if (entry.svg) {
      for (const node of entry.svg.querySelectorAll("[data-state]")) {
        const on = lit.has(node.getAttribute("data-state"));
        node.classList.toggle("smc-current", on);
      }
    }
    const type = S.types.get(key);
    const leaves = new Set(type && type.states ? type.states : []);
    const items = [];
    for (const m of machines) {
      const s = currentState(m);
      items.push(el("li", null, el("span", "who", m.name), " in ", el("span", "state-name", s ?? "?"),
        m.status !== "running" ? el("span", null, " ", badge(m.status, m.status)) : null));
    }
    void leaves;
    entry.legend.replaceChildren(...items);
  }
  for (const [key, entry] of S.svgs) {
    if (!byType.has(key)) { entry.card.remove(); S.svgs.delete(key); }
  }
}

// Graphviz's own size (its viewBox is in points; a CSS pixel is 3/4 of one).
const PX_PER_POINT = 4 / 3;
// A diagram is shrunk to fit its card down to this scale and no further (its labels stay
// about 11 px). One that its card would shrink further takes the whole row of cards (the
// others fill the rows around it), and past that the picture scrolls. (Going wide at 80 %
// sent ordinary machines to rows of their own, leaving holes in the grid.)
const MIN_SCALE = 0.6;
const WIDE_FALLBACK_PX = 1100; // when the card is not laid out yet

function fitDiagram(card, svg) {
  const box = (svg.getAttribute("viewBox") || "").split(/[ ,]+/).map(Number);
  if (box.length !== 4 || !box.every(isFinite) || box[2] <= 0 || box[3] <= 0) return;
  const width = box[2] * PX_PER_POINT;
  const height = box[3] * PX_PER_POINT;
  // Never drawn larger than that: a small machine stays small instead of filling the card
  // with huge letters.
  svg.style.maxWidth = `${Math.ceil(width)}px`;
  svg.style.minWidth = `${Math.floor(width * MIN_SCALE)}px`;
  svg.style.minHeight = `${Math.floor(height * MIN_SCALE)}px`;
  const room = card.clientWidth - 26; // the card's padding and border
  card.classList.toggle("wide", room > 0 ? width * MIN_SCALE > room : width > WIDE_FALLBACK_PX);
}

async function loadDiagram(key, entry) {
  let data;
  try {
    data = await getJSON(`/api/types/${encodeURIComponent(key)}`);
  } catch (error) {
    entry.card.replaceChildren(el("p", "diagram-error", String(error)));
    return;
  }
  const header = [el("h3", null, data.title || data.name || "machine"), el("div", "path", data.config_path || "")];
  if (data.error || data.svg_error || !data.svg) {
    entry.card.replaceChildren(...header, el("p", "diagram-error", data.error || data.svg_error || "no diagram"), entry.legend);
    return;
  }
  const doc = new DOMParser().parseFromString(data.svg, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg") {
    entry.card.replaceChildren(...header, el("p", "diagram-error", "the diagram could not be read"), entry.legend);
    return;
  }
  // Belt and braces: the server already kept only shapes and text.
  for (const bad of root.querySelectorAll("script, foreignObject, a, iframe, style")) bad.remove();
  entry.svg = document.importNode(root, true);
  entry.svg.setAttribute("role", "img");
  const picture = el("div", "picture");
  picture.append(entry.svg);
  entry.card.replaceChildren(...header, picture, entry.legend);
  fitDiagram(entry.card, entry.svg);
  markDirty("diagrams");
}

function renderBoard() {
  const list = $("board-list");
  const boards = [];
  for (const [key, machines] of machinesByType()) {
    const type = S.types.get(key);
    if (!type || !type.template) continue;
    const board = el("div", "board");
    board.setAttribute("data-type", key);
    board.setAttribute("data-name", type.name || "");
    board.append(el("h3", null, `${type.title || type.name} `, el("span", "count", `(${machines.length})`)));
    const groups = el("div", "board-groups");
    const placed = new Set();
    // A card is in the column of each active state: a statechart's columns are its leaves,
    // and a parallel one is in a leaf of each region at once (its own state is the parallel
    // state, which is no column: it once stayed under "other" for good).
    const active = new Map(machines.map((m) => [m.name, activeStates(m)]));
    const columnFor = (state) => {
      const inState = machines.filter((m) => active.get(m.name).has(state));
      inState.forEach((m) => placed.add(m.name));
      const column = el("div", "kanban-column");
      column.setAttribute("data-state", state);
      column.append(el("div", "column-title", el("span", null, state), el("span", "n", String(inState.length))));
      for (const m of inState) column.append(card(m));
      return column;
    };
    for (const group of type.columns || []) {
      const box = el("div", "board-group");
      if (group.group) box.append(el("div", "group-name", group.group));
      const columns = el("div", "board-columns");
      for (const state of group.states) columns.append(columnFor(state));
      box.append(columns);
      groups.append(box);
    }
    const others = machines.filter((m) => !placed.has(m.name));
    if (others.length) {
      const box = el("div", "board-group", el("div", "group-name", "elsewhere"));
      const column = el("div", "kanban-column");
      column.setAttribute("data-state", "");
      column.append(el("div", "column-title", el("span", null, "other")));
      for (const m of others) column.append(card(m));
      box.append(el("div", "board-columns", column));
      groups.append(box);
    }
    board.append(groups);
    boards.push(board);
  }
  list.replaceChildren(...boards);
  $("board-empty").hidden = boards.length > 0;
}

function card(m) {
  const node = el("div", "card");
  node.setAttribute("data-machine", m.name);
  if (m.status !== "running") node.classList.add(m.status);
  const job = (m.live && m.live.job_id) || m.job_id;
  const entered = runningSince(m);
  const since = el("span", null, entered === null ? "–" : duration(now() - entered));
  since.setAttribute("data-since", String(entered ?? ""));
  node.append(el("div", "card-name", m.name),
    el("div", "card-meta", m.status, " · ", since, job ? ` · job ${job}` : ""));
  return node;
}

function renderQueue() {
  const box = $("queue-counts");
  const chips = [];
  for (const status of ["pending", "processing", "completed", "failed", "cancelled"]) {
    if (own(S.queue, status) === undefined) continue;
    chips.push(el("span", "chip", `${status} ${own(S.queue, status)}`));
  }
  box.replaceChildren(...chips);
}

// ---- jobs ------------------------------------------------------------------------------

// The job list is read one request at a time. A change in the queue reads it again after a
// pause of four times what the last read took (300 ms at least): a list the database is slow
// to make (a rare type among a million finished jobs, half a second) then costs the server a
// fifth of a core for each page at most, where a read every 300 ms kept two in flight. A
// filter changed or a button pressed reads it as soon as the read on its way is done.
let jobsTimer = 0;
let jobsLoad = null;
let jobsAgain = false;
let jobsAgainSoon = false;
let jobsCost = 0;
function refreshJobsSoon() {
  if (jobsLoad) { jobsAgainSoon = true; return; }
  if (jobsTimer) return;
  jobsTimer = setTimeout(() => { jobsTimer = 0; refreshJobs(); }, Math.max(300, 4 * jobsCost));
}

// The reader's own act (a filter, Refresh, a button): its list is shown even while they
// point at the table.
function refreshJobsNow() {
  S.jobsForced = true;
  return refreshJobs();
}

function refreshJobs() {
  if (jobsLoad) { jobsAgain = true; return jobsLoad; }
  if (jobsTimer) { clearTimeout(jobsTimer); jobsTimer = 0; }
  const started = performance.now();
  jobsLoad = fetchJobs().finally(() => {
    jobsCost = performance.now() - started;
    jobsLoad = null;
    if (jobsAgain) {
      jobsAgain = jobsAgainSoon = false;
      refreshJobs();
    } else if (jobsAgainSoon) {
      jobsAgainSoon = false;
      refreshJobsSoon();
    }
  });
  return jobsLoad;
}

async function fetchJobs() {
  const params = new URLSearchParams();
  const status = $("job-status").value;
  const type = $("job-type").value.trim();
  if (status) params.set("status", status);
  if (type) params.set("type", type);
  const forced = S.jobsForced;
  S.jobsForced = false;
  let data;
  try {
    data = await getJSON(`/api/jobs?${params}`);
  } catch (error) {
    return;
  }
  S.queue = data.counts;
  markDirty("queue");
  const rows = [];
  for (const job of data.jobs) {
    if (!S.jobTypes.has(job.job_type)) {
      // Suggestions for the type box, which takes any type (a rare one never listed too).
      S.jobTypes.add(job.job_type);
      const option = el("option");
      option.value = job.job_type;
      option.label = visible(job.job_type);
      $("job-types").append(option);
    }
    rows.push(jobRow(job));
  }
  if (!forced && jobTableHeld()) {
    // Rows moved under the pointer: a click aimed at one job's button landed on another's
    // (a reviewer's cancels hit a newer job six times in six). The list waits until the
    // reader leaves it.
    S.heldJobRows = rows;
    const held = $("jobs-held");
    held.textContent = "The list waits while you point at it; it moves on when you leave it.";
    held.hidden = false;
  } else {
    showJobRows(rows);
  }
  if (S.selectedJob) showJob(S.selectedJob, true);
}

// What a job's row shows: a row whose job shows the same is kept, element and all.
function jobShown(job) {
  return JSON.stringify([job.id, job.job_type, job.status, job.last_error, job.attempts,
    job.max_attempts, job.claimed_by, job.created_at]);
}

// An error in a table's cell: three lines at most (the whole text is its tooltip, and in the
// job's detail), broken between words.
function errorLines(text) {
  const lines = el("div", "error-text error-lines", text);
  lines.title = visible(text);
  return lines;
}

function jobRow(job) {
  const tr = el("tr");
  tr.setAttribute("data-job", job.id);
  tr.setAttribute("data-status", job.status);
  tr.shown = jobShown(job);
  const open = el("button", "link", job.id);
  open.type = "button";
  open.title = visible(job.id); // the whole id: the row shows its first three lines
  open.addEventListener("click", () => showJob(job.id));
  const actions = el("td", "actions");
  if (job.status === "failed" || job.status === "cancelled") {
    actions.append(actionButton(job.id, "retry", "Retry", ""));
  }
  if (job.status === "pending") actions.append(actionButton(job.id, "cancel", "Cancel", "danger"));
  const statusCell = el("td", null, badge(job.status, job.status));
  if (job.last_error && job.status !== "completed") statusCell.append(errorLines(job.last_error));
  tr.append(
    el("td", null, open),
    el("td", null, job.job_type),
    statusCell,
    el("td", null, `${job.attempts}/${job.max_attempts}`),
    el("td", null, job.claimed_by ?? "–"),
    el("td", null, dateTime(job.created_at)),
    actions,
  );
  return tr;
}

// Held while the pointer is on the table, or a keyboard user's focus is in it (a button
// clicked keeps the focus too, but not :focus-visible: the list then moves on once the
// pointer leaves, as the note says).
function jobTableHeld() {
  const table = $("job-table");
  return table.matches(":hover") || table.querySelector(":focus-visible") !== null;
}

// Each read's rows are kept where they show the same (keepRows): the list once replaced every
// row at each read, and a click whose press and release straddled a read (a job added
// anywhere, a filter's answer) was lost, its button gone from the page.
function showJobRows(rows) {
  S.heldJobRows = null;
  $("jobs-held").hidden = true;
  keepRows($("job-table").tBodies[0], rows);
  $("jobs-empty").hidden = rows.length > 0;
}

// A table body shows ``rows`` (each with ``shown``: what it shows, as text): a row already
// there that shows the same stays, the very element, and only rows that changed, came or
// went are touched. Rows that stay keep their order; the new ones go in between them.
function keepRows(body, rows) {
  const kept = new Map();
  for (const tr of body.rows) kept.set(tr.shown, tr);
  const wanted = rows.map((fresh) => kept.get(fresh.shown) ?? fresh);
  const staying = new Set(wanted);
  for (const tr of [...body.rows]) if (!staying.has(tr)) tr.remove();
  let at = body.firstElementChild;
  for (const tr of wanted) {
    if (tr === at) at = at.nextElementSibling;
    else body.insertBefore(tr, at);
  }
}

function releaseJobRows() {
  if (S.heldJobRows && !jobTableHeld()) showJobRows(S.heldJobRows);
}

function actionButton(jobId, action, label, style) {
  const button = el("button", style || null, label);
  button.type = "button";
  button.setAttribute("data-action", action);
  button.addEventListener("click", async () => {
    button.disabled = true;
    let answer;
    try {
      answer = await post(`/api/jobs/${encodeURIComponent(jobId)}/${action}`);
    } catch (error) {
      answer = { ok: false, body: { error: `${label} failed: the server did not answer` } };
    } finally {
      // A row whose job did not change stays on the page as it is: its button works again.
      button.disabled = false;
    }
    const { ok, body } = answer;
    if (ok) toast(`${label}: job ${jobId} is ${body.job.status} now`);
    else toast(body.error || `${label} failed`, true);
    const row = button.closest("tr");
    if (body.job && row && row.isConnected && jobTableHeld()) {
      // The answer changes its own row, in place: jobs that came meanwhile stay held, or
      // the next click, aimed at the row below, would land on one never seen.
      row.replaceWith(jobRow(body.job));
      refreshJobs();
    } else {
      refreshJobsNow();
    }
  });
  return button;
}

// An id as typed (ids may hold spaces: `smc jobs add --id ' x '`), else without the spaces
// around it that a paste brings along.
async function openTypedJob(typed) {
  const trimmed = typed.trim();
  if (!trimmed) return;
  if (trimmed !== typed) {
    try {
      await getJSON(`/api/jobs/${encodeURIComponent(typed)}?data=0`);
      showJob(typed);
      return;
    } catch (error) {
      // not that id: the trimmed one, below
    }
  }
  showJob(trimmed);
}

async function showJob(jobId, quiet) {
  S.selectedJob = jobId;
  // A job's data never changes: a refresh of the open job (at each list read) leaves it out
  // and keeps the text already shown (it can be megabytes).
  const again = quiet && S.shownJob && S.shownJob.id === jobId;
  let data;
  try {
    data = await getJSON(`/api/jobs/${encodeURIComponent(jobId)}${again ? "?data=0" : ""}`);
  } catch (error) {
    if (!quiet) {
      toast(/HTTP 404$/.test(String(error)) ? `No job has the id ${jobId}.` : String(error), true);
      // The job shown, if any, stays the one its refreshes follow (they once asked for the
      // unknown id, and the open job's detail froze).
      if (S.selectedJob === jobId) S.selectedJob = S.shownJob && !$("job-detail").hidden ? S.shownJob.id : null;
    }
    return;
  }
  if (S.selectedJob !== jobId) return; // another job was opened meanwhile
  const job = data.job;
  const dataText = again ? S.shownJob.dataText : JSON.stringify(job.data, null, 2);
  S.shownJob = { id: jobId, dataText };
  const box = $("job-detail");
  const fields = el("dl");
  const add = (k, v) => fields.append(el("dt", null, k), el("dd", null, v ?? "–"));
  add("status", badge(job.status, job.status));
  add("type", job.job_type);
  add("attempts", `${job.attempts} of ${job.max_attempts}`);
  add("worker", job.claimed_by);
  add("created", dateTime(job.created_at));
  add("started", dateTime(job.started_at));
  add("finished", dateTime(job.finished_at));
  if (job.last_error) add("last error", el("span", "error-text", job.last_error));
  const close = el("button", "ghost", "Close");
  close.type = "button";
  close.addEventListener("click", () => { S.selectedJob = null; S.shownJob = null; box.hidden = true; });
  const parts = [el("h3", null, `Job ${job.id} `, close), fields, el("pre", "data", dataText)];
  if (data.history === null) {
    parts.push(el("p", "empty", "This database keeps no history yet: the job's story is its fields above."));
  } else {
    const list = el("ol", "activity");
    const half = data.history.length / 2;
    data.history.forEach((row, index) => {
      // A story too long to send is its first and last halves: the gap is marked.
      if (data.cut && index === half) list.append(el("li", "gap", "… rows between left out: smc history --job shows them"));
      list.append(activityItem(historyActivity(row)));
    });
    parts.push(el("h3", null, "History"), list);
  }
  box.replaceChildren(...parts);
  box.hidden = false;
  // Opened by a click: brought into view (it is under a list of up to 200 jobs). A refresh
  // of an open one leaves the page where the reader put it.
  if (!quiet) box.scrollIntoView({ block: "start" });
}

// ---- activity --------------------------------------------------------------------------

function liveActivity(r) {
  let message = r.message ?? r.reason ?? "";
  if (r.kind === "unhandled_event" || r.kind === "invalid_event") message = `event ${r.event ?? "?"} in ${r.state ?? r.from ?? "?"}${message ? ": " + message : ""}`;
  if (r.kind === "job_failed") message = `job ${r.job_id ?? "?"}${r.error ? ": " + r.error : message ? ": " + message : ""}`;
  return { ts: r.ts, machine: r.machine, kind: r.kind, message: String(message), trace: null };
}

function historyActivity(row) {
  const bits = [];
  const kind = row.kind || "";
  if (kind === "transition") bits.push(`${row.from_state ?? "?"} —${row.event ?? ""}→ ${row.to_state ?? "?"}`);
  else if (kind === "machine_started") bits.push(`started in ${row.to_state ?? "?"}`);
  else if (kind === "machine_stopped") bits.push(`stopped in ${row.from_state ?? "?"}`);
  else if (kind.startsWith("job_")) {
    if (row.event) bits.push(`type ${row.event}`); // a job row's event is the job's type
  } else if (row.event) {
    // An event's row: where it came from, and (dropped, refused) the state it met.
    const where = row.from_state ? ` in ${row.from_state}` : "";
    bits.push(`event ${row.event}${row.source ? " from " + row.source : ""}${where}`);
  }
  if (row.job_id) bits.push(`job ${row.job_id}${row.attempt ? " attempt " + row.attempt : ""}`);
  if (row.excerpt) bits.push(row.excerpt);
  return { id: row.id ?? null, ts: row.ts, machine: row.machine, kind, message: bits.join(" · "), trace: row.trace_id };
}

// What makes two entries of the activity log the same one: a history row's id (the page's
// first read of the log and the stream may each bring the same row, in either order), else
// what it says and when (a socket's record, a death the registry shows).
function activityKey(item) {
  if (item.id !== undefined && item.id !== null) return `#${item.id}`;
  return `${item.ts}|${item.machine}|${item.kind}|${item.message}`;
}

// An entry the log shows already is not added again (a row the first read answered with
// can come on the stream after it: the feed follows the history 100 ms behind).
function addActivity(item) {
  const key = activityKey(item);
  if (S.activityKeys.has(key)) return;
  S.activity.push(item);
  S.activityKeys.add(key);
  if (S.activity.length > ACTIVITY_SHOWN) {
    for (const gone of S.activity.splice(0, S.activity.length - ACTIVITY_SHOWN)) S.activityKeys.delete(activityKey(gone));
  }
  markDirty("activity");
}

function activityItem(item) {
  const li = el("li");
  li.setAttribute("data-kind", item.kind);
  const what = el("div", "what", el("span", "who", item.machine ?? ""), badge(item.kind.replace(/_/g, " "), item.kind));
  if (item.trace) {
    const link = el("button", "link", ` trace ${item.trace.slice(0, 10)}…`);
    link.type = "button";
    link.addEventListener("click", () => { $("trace-id").value = item.trace; showTrace(item.trace); location.hash = "#trace"; });
    what.append(link);
  }
  li.append(el("span", "time", stamp(item.ts)), what);
  if (item.message) li.append(el("div", "message", item.message));
  return li;
}

function renderActivity() {
  const items = S.activity.slice().reverse().map(activityItem);
  $("activity-list").replaceChildren(...items);
  $("activity-empty").hidden = items.length > 0 || S.activityRead !== true;
  if (S.activityRead !== true) {
    $("activity-source").textContent = S.activityRead === null
      ? "Reading the activity log…"
      : visible(`The activity log could not be read (${S.activityRead}); trying again.`);
    return;
  }
  $("activity-source").textContent = (S.history
    ? "From the database's history: errors, dropped events, failures and retries."
    : "Since this page's server started (this database keeps no history).")
    + (S.feed === "sockets" ? " Live updates come from the machines' monitor sockets on the server's host only." : "");
}

let activityRetry = 0;
async function loadActivity() {
  let data;
  try {
    data = await getJSON("/api/activity");
  } catch (error) {
    // A busy or missing database (503): said on the page, and read again shortly (the next
    // snapshot would otherwise be the only retry, and it may never come).
    S.activityRead = String(error.message ?? error);
    markDirty("activity");
    if (!activityRetry) {
      activityRetry = setTimeout(() => { activityRetry = 0; loadActivity(); }, 2000);
    }
    return;
  }
  S.activityRead = true;
  // Merged with what the stream added meanwhile: a record that arrived while this request was
  // on its way may be missing from the answer, and must not be lost; one also in the answer
  // shows once (activityKey: a history row's id).
  const key = activityKey;
  const fetched = data.history ? data.history.map(historyActivity) : data.live.map(liveActivity);
  // The registry's dead machines of the day, as the live ui_machine_dead message has them.
  for (const death of data.deaths ?? []) fetched.push({ ...liveActivity(death), kind: "machine_dead" });
  const seen = new Set(fetched.map(key));
  for (const item of S.activity) if (!seen.has(key(item))) fetched.push(item);
  S.activity = fetched;
  S.activity.sort((a, b) => (a.ts || 0) - (b.ts || 0));
  if (S.activity.length > ACTIVITY_SHOWN) S.activity.splice(0, S.activity.length - ACTIVITY_SHOWN);
  S.activityKeys = new Set(S.activity.map(key));
  markDirty("activity");
}

// ---- trace -----------------------------------------------------------------------------

async function showTrace(traceId) {
  const view = $("trace-view");
  if (!traceId) { view.replaceChildren(); return; }
  let data;
  try {
    data = await getJSON(`/api/trace/${encodeURIComponent(traceId)}`);
  } catch (error) {
    view.replaceChildren(el("p", "error-text", String(error)));
    return;
  }
  if (data.error) { view.replaceChildren(el("p", "empty", data.error)); return; }
  if (!data.rows.length) { view.replaceChildren(el("p", "empty", "Nothing recorded under this trace id.")); return; }
  // In time order: the store's ids are commit order, and a machine stages its transitions
  // until its next write, so another machine's rows can have ids between them (history.md).
  // A cut trace is two halves, each put in order on its own.
  const inTime = (part) => [...part].sort((a, b) => a.ts - b.ts || a.id - b.id);
  const half = data.rows.length / 2;
  const rows = data.cut ? [...inTime(data.rows.slice(0, half)), ...inTime(data.rows.slice(half))] : inTime(data.rows);
  const start = Math.min(...rows.map((row) => row.ts));
  const span = Math.max(Math.max(...rows.map((row) => row.ts)) - start, 0.001);
  const lanes = new Map();
  // A row with no machine was written by a command or program (smc jobs add, smc send).
  // A job added by a machine is in the lane of the machine that added it (its source).
  const laneOf = (row) => (row.kind === "job_added" && row.source) || row.machine || "(outside: smc command or API)";
  for (const row of rows) {
    if (!lanes.has(laneOf(row))) lanes.set(laneOf(row), []);
    lanes.get(laneOf(row)).push(row);
  }
  const laneBox = el("div", "lanes");
  for (const [machine, items] of lanes) {
    const track = el("div", "lane-track");
    for (const row of items) {
      const dot = el("span", "lane-dot");
      if (row.kind === "error" || row.kind === "job_failed" || row.kind === "event_dropped") dot.classList.add("bad");
      dot.style.left = `${(100 * (row.ts - start)) / span}%`;
      dot.title = `${row.kind} +${(row.ts - start).toFixed(3)} s`;
      track.append(dot);
    }
    laneBox.append(el("div", "lane", el("div", "lane-name", machine), track));
  }
  const table = el("table", "grid");
  table.append(el("thead", null, el("tr", null, el("th", null, "+s"), el("th", null, "Machine"), el("th", null, "What"), el("th", null, "Job"))));
  const body = el("tbody");
  rows.forEach((row, index) => {
    if (data.cut && index === rows.length / 2) {
      const gap = el("td", "gap", "… rows between left out: smc history --trace shows them");
      gap.colSpan = 4;
      body.append(el("tr", null, gap));
    }
    const item = historyActivity(row);
    body.append(el("tr", null, el("td", "mono", (row.ts - start).toFixed(3)), el("td", "name", laneOf(row)),
      el("td", null, badge(row.kind.replace(/_/g, " "), row.kind), " ", item.message), el("td", "mono", row.job_id ?? "")));
  });
  table.append(body);
  const counted = data.cut ? `The first and last ${rows.length / 2} of more records` : `${rows.length} records`;
  view.replaceChildren(el("p", "hint", `${counted} across ${lanes.size} machine(s), over ${duration(span)}, in time order`), laneBox, table);
}

// ---- the live stream -------------------------------------------------------------------

// EventSource tries again by itself after a lost connection, but not after an answer that is
// not the stream: a 401 (a server restarted with a token: the browser's session was the last
// server's) or an error status closes it for good, and the page said "reconnecting…" for
// ever. It asks why: signed out, it says so (the token's link signs in again); else it
// connects again after a pause.
function streamRefused() {
  const status = $("connection");
  const again = () => setTimeout(connect, 2000);
  fetch("/api/state", { credentials: "same-origin" }).then((response) => {
    if (response.status !== 401) return again();
    status.dataset.state = "signed-out";
    status.textContent = "signed out: open the monitor's link with its token again";
  }, again);
}

function connect() {
  const status = $("connection");
  const source = new EventSource("/api/stream");
  source.onopen = () => {
    status.dataset.state = "live";
    status.textContent = "live";
    // A new connection, perhaps to a new server: what the last one said of each machine
    // live may be stale (a machine moved while the page was cut off), and the snapshot's
    // live rows are what this server has seen. Records coming from now on are newer.
    for (const m of S.machines.values()) m.live = null;
    loadState().catch((error) => toast(String(error), true));
  };
  source.onerror = () => {
    status.dataset.state = "down";
    status.textContent = "reconnecting…";
    if (source.readyState === EventSource.CLOSED) streamRefused();
  };
  source.onmessage = (event) => {
    let batch;
    try {
      batch = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    if (!Array.isArray(batch)) return;
    // A measuring hook (benchmarks/bench_ui.py sets it); nothing else uses it.
    const probe = typeof window.smcProbe === "function" ? window.smcProbe : null;
    for (const record of batch) {
      if (!record || typeof record !== "object") continue;
      if (probe) probe(record);
      applyRecord(record);
    }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("job-status").addEventListener("change", refreshJobsNow);
  $("job-type").addEventListener("change", refreshJobsNow);
  $("job-refresh").addEventListener("click", refreshJobsNow);
  $("job-table").addEventListener("mouseleave", () => setTimeout(releaseJobRows, 0));
  $("job-table").addEventListener("focusout", () => setTimeout(releaseJobRows, 0));
  $("job-open").addEventListener("submit", (event) => {
    event.preventDefault();
    openTypedJob($("job-id").value);
  });
  $("trace-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showTrace($("trace-id").value.trim());
  });
  renderActivity();
  connect();
  setInterval(tickTimes, 1000);
});

// ---- workflows -------------------------------------------------------------------------
// Runs of `smc workflow run` and, for the one picked, its DAG (SVG the server drew with dot
// and cleaned, fetched once per run: a run's definition never changes) with each task's node
// coloured by the task's state. The list and the picked run are read again every second
// while the page is visible; task names, errors and job ids are text, as everywhere here.

const WF = {
  selected: null, // run id
  colours: {}, // state -> fill colour (smc.workflow.diagram's, the CLI's colours)
  states: [],
  svg: null, // the picked run's <svg>, once fetched
  svgRun: null,
  loading: false,
  parts: null, // the detail's persistent pieces (with the key of what they show)
  runsKey: null, // what the runs table shows
};
const WORKFLOW_POLL_MS = 1000;

function stateChip(state, text) {
  const chip = el("span", "chip wf-state", text);
  chip.setAttribute("data-task-state", state);
  const colour = own(WF.colours, state);
  if (colour) chip.style.background = colour;
  return chip;
}

async function refreshWorkflows() {
  if (WF.loading || document.hidden) return;
  WF.loading = true;
  try {
    const data = await getJSON("/api/workflows");
    WF.colours = data.colours || {};
    WF.states = data.states || [];
    renderWorkflowRuns(data.runs);
    if (WF.selected) await showWorkflowRun(WF.selected);
  } catch (_) {
    // The database is away: the connection badge and ui_error toasts say so already.
  } finally {
    WF.loading = false;
  }
}

// What a workflow view shows, as text to compare: without the scheduler's heartbeat age,
// which the server works out anew at each poll and the page does not show.
function workflowKey(shown) {
  return JSON.stringify(shown, (name, value) => (name === "heartbeat_age" ? undefined : value));
}

// Who runs it: a running run whose scheduler is silent (killed, most likely) moves only
// once `smc workflow run FILE --run-id RUN` is started again.
function schedulerText(run, nobody = "–") {
  const held = run.scheduler_pid !== null && run.scheduler_pid !== undefined
    ? `pid ${run.scheduler_pid} on ${run.scheduler_host ?? "?"}` : null;
  if (!run.scheduler_silent) return held ?? nobody;
  return `${held ? held + ", not heard from" : "no scheduler"}: resume with smc workflow run FILE --run-id ${run.run_id}`;
}

function renderWorkflowRuns(runs) {
  // As the run's detail: rebuilt only when something changed (a click is never lost).
  const key = workflowKey([runs, WF.selected, WF.states, WF.colours]);
  if (WF.runsKey === key) return;
  WF.runsKey = key;
  const rows = [];
  for (const run of runs) {
    const tr = el("tr");
    tr.setAttribute("data-run", run.run_id);
    tr.setAttribute("data-status", run.status);
    if (run.run_id === WF.selected) tr.classList.add("selected");
    const open = el("button", "link", run.run_id);
    open.type = "button";
    open.addEventListener("click", () => { WF.selected = run.run_id; refreshWorkflowsNow(); });
    // The chips' flex box inside the cell: a cell that is a flex box itself is no table
    // cell, and a picked row's colour stopped under its chips.
    const counts = el("div", "wf-counts");
    for (const state of WF.states) {
      const n = own(run.counts, state);
      if (n) counts.append(stateChip(state, `${state.toLowerCase()} ${n}`));
    }
    const status = el("td", null, badge(run.status, run.status));
    if (run.cancel_requested && run.status === "running") status.append(" ", badge("cancelling", "pending"));
    const scheduler = el("td", null, schedulerText(run));
    if (run.scheduler_silent) scheduler.classList.add("error-text");
    tr.append(
      el("td", "name", run.workflow),
      el("td", "mono", open),
      status,
      el("td", null, dateTime(run.created_at)),
      el("td", null, dateTime(run.finished_at)),
      el("td", null, counts),
      scheduler,
    );
    rows.push(tr);
  }
  $("workflow-table").tBodies[0].replaceChildren(...rows);
  $("workflows-empty").hidden = rows.length > 0;
  $("workflow-count").textContent = rows.length ? `(${rows.length})` : "";
}

let workflowAgain = false;
async function refreshWorkflowsNow() {
  if (WF.loading) { workflowAgain = true; return; }
  await refreshWorkflows();
  if (workflowAgain) { workflowAgain = false; refreshWorkflows(); }
}

function workflowParts(runId) {
  if (WF.parts && WF.parts.runId === runId) return WF.parts;
  const parts = {
    runId,
    header: el("h3"),
    fields: el("dl"),
    legend: el("ul", "wf-legend"),
    picture: el("div", "wf-diagram"),
    table: el("table", "grid wf-tasks"),
  };
  parts.table.append(el("thead", null, el("tr", null, el("th", null, "Task"), el("th", null, "State"),
    el("th", null, "Attempt"), el("th", null, "Job"), el("th", null, "Job type"), el("th", null, "Last error"),
    el("th", null, "Since"))), el("tbody"));
  WF.parts = parts;
  WF.svg = null;
  WF.svgRun = null;
  $("workflow-detail").replaceChildren(parts.header, parts.fields, parts.legend, parts.picture, parts.table);
  return parts;
}

async function showWorkflowRun(runId) {
  const needSvg = WF.svgRun !== runId;
  let data;
  try {
    data = await getJSON(`/api/workflows/${encodeURIComponent(runId)}${needSvg ? "" : "?svg=0"}`);
  } catch (error) {
    if (WF.selected === runId) { WF.selected = null; $("workflow-detail").hidden = true; }
    return;
  }
  if (WF.selected !== runId) return; // another run was picked meanwhile
  WF.colours = data.colours || WF.colours;
  const parts = workflowParts(runId);
  const run = data.run;
  const box = $("workflow-detail");
  // Polled every second: rebuilt only when something changed, so that a button is never
  // replaced under the pointer between a press and its release (the click would be lost).
  // The "since" times move on their own (tickTimes).
  const key = workflowKey([run, data.tasks, data.states, WF.colours]);
  if (parts.key === key) {
    box.hidden = false;
    return;
  }
  box.setAttribute("data-run", run.run_id);
  box.setAttribute("data-status", run.status);
  // Header: the run, its cancel button while it runs, close.
  const close = el("button", "ghost", "Close");
  close.type = "button";
  close.addEventListener("click", () => { WF.selected = null; WF.parts = null; box.hidden = true; refreshWorkflowsNow(); });
  const header = [`Workflow ${run.workflow} · run ${run.run_id} `];
  if (run.status === "running" && !run.cancel_requested) {
    const cancel = el("button", "danger", "Cancel run");
    cancel.type = "button";
    cancel.setAttribute("data-action", "cancel-run");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      const { ok, body } = await post(`/api/workflows/${encodeURIComponent(run.run_id)}/cancel`);
      if (ok && body.run.scheduler_silent) toast(`Cancel requested: run ${run.run_id}'s queued jobs are cancelled; no scheduler is running it, so it ends once one resumes it`);
      else if (ok) toast(`Cancel requested: run ${run.run_id}'s queued jobs are cancelled and its scheduler ends it`);
      else toast(body.error || "Cancel failed", true);
      refreshWorkflowsNow();
    });
    header.push(cancel, " ");
  }
  header.push(close);
  parts.header.replaceChildren(...header);
  // Fields.
  const fields = [];
  const add = (k, v) => fields.push(el("dt", null, k), el("dd", null, v ?? "–"));
  add("status", badge(run.status, run.status));
  if (run.cancel_requested) add("cancel", "requested");
  add("started", dateTime(run.created_at));
  add("finished", dateTime(run.finished_at));
  const scheduler = schedulerText(run, "none holds it");
  add("scheduler", run.scheduler_silent ? el("span", "error-text", scheduler) : scheduler);
  const trace = el("button", "link", run.trace_id);
  trace.type = "button";
  trace.addEventListener("click", () => { $("trace-id").value = run.trace_id; showTrace(run.trace_id); location.hash = "#trace"; });
  add("trace", trace);
  parts.fields.replaceChildren(...fields);
  // Legend: every state, its colour and how many tasks are in it.
  const counted = new Map();
  for (const task of data.tasks) counted.set(task.state, (counted.get(task.state) || 0) + 1);
  parts.legend.replaceChildren(...(data.states || WF.states).map((state) => {
    const swatch = el("span", "swatch");
    swatch.style.background = own(WF.colours, state) || "#fff";
    const li = el("li", null, swatch, `${state} ${counted.get(state) || 0}`);
    li.setAttribute("data-task-state", state);
    return li;
  }));
  // The picture, once per run.
  if (needSvg) {
    WF.svgRun = runId;
    if (data.svg) {
      const doc = new DOMParser().parseFromString(data.svg, "image/svg+xml");
      const root = doc.documentElement;
      if (root.nodeName === "svg") {
        for (const bad of root.querySelectorAll("script, foreignObject, a, iframe, style")) bad.remove();
        WF.svg = document.importNode(root, true);
        WF.svg.setAttribute("role", "img");
        const viewBox = (WF.svg.getAttribute("viewBox") || "").split(/[ ,]+/).map(Number);
        if (viewBox.length === 4 && isFinite(viewBox[2]) && viewBox[2] > 0) WF.svg.style.maxWidth = `${Math.ceil(viewBox[2] * 1.333)}px`;
        parts.picture.replaceChildren(WF.svg);
      } else {
        parts.picture.replaceChildren(el("p", "diagram-error", "the diagram could not be read"));
      }
    } else {
      parts.picture.replaceChildren(el("p", "diagram-error", data.svg_error || "no diagram"));
    }
  }
  const stateOf = new Map(data.tasks.map((task) => [task.task, task]));
  if (WF.svg) {
    for (const node of WF.svg.querySelectorAll("g[data-state]")) {
      const task = stateOf.get(node.getAttribute("data-state"));
      const state = task ? task.state : "";
      node.setAttribute("data-task-state", state);
      for (const shape of node.querySelectorAll(":scope > polygon, :scope > path, :scope > ellipse")) {
        shape.style.fill = own(WF.colours, state) || "";
      }
      const title = node.querySelector(":scope > title");
      if (title) title.textContent = task ? visible(`${task.task}: ${state}, attempt ${task.attempt}`) : "";
    }
  }
  // The tasks.
  const rows = [];
  for (const task of data.tasks) {
    const tr = el("tr");
    tr.setAttribute("data-task", task.task);
    tr.setAttribute("data-task-state", task.state);
    let job = "–";
    if (task.job_id) {
      job = el("button", "link", task.job_id);
      job.type = "button";
      job.addEventListener("click", () => showJob(task.job_id));
    }
    const since = el("span", null, duration(now() - task.updated_at));
    since.setAttribute("data-since", String(task.updated_at));
    tr.append(
      el("td", "name", task.task),
      el("td", null, stateChip(task.state, task.state)),
      el("td", null, String(task.attempt)),
      el("td", "mono", job),
      el("td", null, task.job_type ?? "–"),
      el("td", null, task.last_error ? errorLines(task.last_error) : ""),
      el("td", null, since),
    );
    rows.push(tr);
  }
  parts.table.tBodies[0].replaceChildren(...rows);
  parts.key = key;
  box.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  refreshWorkflows();
  setInterval(refreshWorkflows, WORKFLOW_POLL_MS);
});
