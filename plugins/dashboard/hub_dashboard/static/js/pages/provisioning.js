/**
 * Provisioning (the `esphome` plugin): the ESPHome nodes defined as YAML in the hub's firmware folder and
 * where each stands — validated, compiled, seen by the hub, running which version — with validate and
 * compile, their output streamed live as ESPHome writes it, the compiled binary to download, and a way
 * to hand it to the `ota` plugin's firmware catalogue for a rollout.
 *
 * The log streams over `GET /api/esphome/jobs/{id}/log` (chunked text, read with fetch and a stream
 * reader, bearer token in the header); rows follow `esphome_job_updated` over the WebSocket, so a job
 * started in another tab or by `hub esphome` shows up too. 500 nodes are 500 plain rows, redrawn one
 * at a time; the search box hides the others.
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { accessToken, invalidate } from "../auth.js";
import { h, link, nodePath, notice, replace, statusBadge } from "../dom.js";
import { formatAgo, formatDateTime, formatValue } from "../format.js";

const MAX_LOG_LINES = 5000;
const KIND_WORDS = { validate: ["Validating", "Validated"], compile: ["Compiling", "Compiled"] };

export function mount(main, { socket, setTitle }) {
  setTitle("Provisioning");
  const rows = new Map();
  const rowElements = new Map();
  const status = h("div");
  const where = h("p", { class: "muted" });
  const search = h("input", {
    type: "search",
    id: "provisioning-search",
    placeholder: "Name, file or area",
    oninput: () => filter(),
  });
  const count = h("span", { class: "muted small", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table provisioning" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Node", "Area", "Validated", "Compiled", "On the hub", "Actions"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    body,
  );
  const logTitle = h("h2", null, "Log");
  const logState = h("p", { class: "job-state", role: "status" });
  const logText = h("pre", { class: "job-log", tabindex: "0", role: "log", "aria-label": "ESPHome output" });
  const result = h("div", { class: "job-result" });
  const logCard = h("section", { class: "card job", hidden: true }, logTitle, logState, logText, result);
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", null, "Provisioning")),
    where,
    status,
    logCard,
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "inline-form" },
        h("div", { class: "field" }, h("label", { for: "provisioning-search" }, "Search nodes"), search),
        count,
      ),
      // Focusable, so keyboard users can scroll a table wider than a phone.
      h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Defined nodes" }, table),
    ),
  );
  let following = null; // the AbortController of the log being streamed

  async function load() {
    let answer;
    try {
      answer = await api("GET", "/api/esphome/nodes");
    } catch (err) {
      if (isSignedOut(err)) return;
      const text = err.status === 404 ? "The esphome plugin is not loaded: no node files here." : errorMessage(err);
      replace(status, notice(text, "error"));
      return;
    }
    where.textContent = `ESPHome nodes defined in ${answer.firmware_dir}.`;
    replace(status, answer.esphome.found ? null : notice(answer.esphome.message, "warn"));
    const names = new Set(answer.nodes.map((row) => row.name));
    for (const [name, tr] of rowElements) {
      if (!names.has(name)) {
        tr.remove();
        rowElements.delete(name);
        rows.delete(name);
      }
    }
    for (const row of answer.nodes) show(row);
    if (!answer.nodes.length) replace(status, notice(`No node files in ${answer.firmware_dir} yet.`));
    filter();
  }

  async function refresh(name) {
    try {
      show(await api("GET", `/api/esphome/nodes/${encodeURIComponent(name)}`));
    } catch (err) {
      if (!isSignedOut(err) && err.status !== 404) replace(status, notice(errorMessage(err), "error"));
    }
  }

  function show(row) {
    if (!row.name) return; // a file without a node name: nothing to act on
    rows.set(row.name, row);
    const tr = rowView(row, { start, download, toOta });
    const old = rowElements.get(row.name);
    if (old) old.replaceWith(tr);
    else body.append(tr);
    rowElements.set(row.name, tr);
    tr.hidden = !matches(row);
  }

  function matches(row) {
    const q = search.value.trim().toLowerCase();
    return !q || [row.name, row.file, row.friendly_name, row.area].some((v) => v && v.toLowerCase().includes(q));
  }

  function filter() {
    let shown = 0;
    for (const [name, tr] of rowElements) {
      tr.hidden = !matches(rows.get(name));
      shown += tr.hidden ? 0 : 1;
    }
    count.textContent = `${shown} of ${rows.size} nodes`;
  }

  async function start(row, kind) {
    replace(status);
    try {
      const job = await api("POST", `/api/esphome/nodes/${encodeURIComponent(row.name)}/${kind}`);
      show({ ...row, job });
      follow(job);
    } catch (err) {
      if (!isSignedOut(err)) replace(status, notice(errorMessage(err), "error"));
    }
  }

  /** Stream a job's log into the log card, then show how it ended. */
  async function follow(job) {
    if (following) following.abort();
    const controller = new AbortController();
    following = controller;
    logCard.hidden = false;
    logTitle.textContent = `${KIND_WORDS[job.kind][0]} ${job.node} (${job.file})`;
    logState.textContent = "Running…";
    logText.textContent = "";
    replace(result);
    let lines = 0;
    try {
      const response = await authorized(`/api/esphome/jobs/${encodeURIComponent(job.id)}/log`, controller.signal);
      if (!response.ok) throw new Error(`the log could not be read (HTTP ${response.status})`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const stick = logText.scrollTop + logText.clientHeight >= logText.scrollHeight - 4;
        logText.append(value);
        lines += value.split("\n").length - 1;
        if (lines > MAX_LOG_LINES) {
          logText.textContent = logText.textContent.split("\n").slice(-MAX_LOG_LINES).join("\n");
          lines = MAX_LOG_LINES;
        }
        if (stick) logText.scrollTop = logText.scrollHeight;
      }
      const ended = await api("GET", `/api/esphome/jobs/${encodeURIComponent(job.id)}`);
      if (following !== controller) return;
      showResult(ended);
      refresh(ended.node);
    } catch (err) {
      if (err.name === "AbortError" || isSignedOut(err)) return;
      logState.textContent = errorMessage(err);
    }
  }

  function showResult(job) {
    const ok = job.status === "succeeded";
    logState.textContent = ok
      ? `${KIND_WORDS[job.kind][1]} ${job.node} ${formatAgo(job.finished_at)}.`
      : `Failed: ${job.problem || "ESPHome reported an error (see the log)."}`;
    logState.className = `job-state ${ok ? "ok" : "failed"}`;
    const row = rows.get(job.node);
    if (!ok || !job.build || !row) return;
    const b = job.build;
    replace(
      result,
      h(
        "div",
        { class: "callout success binary" },
        h("p", null, `Binary ${b.version ? `version ${b.version}` : ""}, ${formatValue(b.size, "B")}`),
        h("p", { class: "mono small", title: b.binary }, `SHA-256 ${b.sha256}`),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "button primary", onclick: () => download(row) }, "Download binary"),
          h("button", { type: "button", class: "button", onclick: () => toOta(row) }, "Add to firmware catalogue"),
        ),
      ),
    );
  }

  async function download(row) {
    replace(status);
    try {
      const response = await authorized(`/api/esphome/nodes/${encodeURIComponent(row.name)}/firmware`);
      if (!response.ok) throw new Error(((await response.json().catch(() => null))?.error?.message) || `HTTP ${response.status}`);
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || `${row.name}.bin`;
      const url = URL.createObjectURL(await response.blob());
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      if (!isSignedOut(err)) replace(status, notice(`Download failed: ${errorMessage(err)}`, "error"));
    }
  }

  /** The compiled binary into the `ota` plugin's catalogue (its upload API); rollouts start on the Firmware page. */
  async function toOta(row) {
    replace(status);
    try {
      const response = await authorized(`/api/esphome/nodes/${encodeURIComponent(row.name)}/firmware`);
      if (!response.ok) throw new Error(`the binary could not be read (HTTP ${response.status})`);
      const version = response.headers.get("X-Firmware-Version");
      const form = new FormData();
      form.append("file", new File([await response.blob()], `${row.name}-${version}.bin`));
      if (version) form.append("version", version);
      const added = await api("POST", "/api/ota/firmware", { body: form });
      replace(
        status,
        h(
          "p",
          { class: "callout success", role: "status" },
          `Version ${added.version} of ${row.name} is in the firmware catalogue. `,
          link("/firmware", null, "Start a rollout on the Firmware page"),
        ),
      );
    } catch (err) {
      if (isSignedOut(err)) return;
      const text = err.status === 404 ? "The ota plugin is not loaded." : errorMessage(err);
      replace(status, h("p", { class: "callout error", role: "alert" }, `Not added to the catalogue: ${text}`));
    }
  }

  const unsubscribe = socket.subscribe("esphome_job_updated", null, (event) => refresh(event.data.job.node));
  const unready = socket.onReady(load); // after a reconnect: what changed meanwhile
  load();
  return () => {
    unsubscribe();
    unready();
    if (following) following.abort();
  };
}

/** fetch with the bearer token (one refresh on a 401), for answers that are not JSON: a stream, a binary. */
async function authorized(path, signal) {
  for (let attempt = 0; ; attempt += 1) {
    const token = await accessToken();
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
      credentials: "omit",
      signal,
    });
    if (response.status === 401 && attempt === 0) {
      invalidate(token);
      continue;
    }
    return response;
  }
}

function rowView(row, { start, download, toOta }) {
  const busy = row.job && (row.job.status === "queued" || row.job.status === "running");
  const button = (label, onclick, cls = "button small") =>
    h("button", { type: "button", class: cls, disabled: busy, onclick, "aria-label": `${label} ${row.name}` }, label);
  const compiled = row.compiled;
  return h(
    "tr",
    { dataset: { name: row.name } },
    h(
      "td",
      { dataset: { label: "Node" } },
      row.node_id ? link(nodePath(row.node_id), { class: "node-name" }, row.friendly_name || row.name) : row.name,
      h("div", { class: "muted small" }, `${row.name} · ${row.file}`),
    ),
    h("td", { dataset: { label: "Area" } }, row.area || "—"),
    h("td", { class: "col-validated", dataset: { label: "Validated" } }, validatedText(row)),
    h(
      "td",
      { class: "col-compiled", dataset: { label: "Compiled" } },
      compiled
        ? [
            h("span", { title: formatDateTime(compiled.compiled_at) }, `${compiled.version || "?"} · ${formatValue(compiled.size, "B")}`),
            compiled.outdated ? h("div", { class: "muted small" }, "YAML changed since") : null,
          ]
        : "—",
    ),
    h(
      "td",
      { class: "col-hub", dataset: { label: "On the hub" } },
      row.seen ? statusBadge(row.status || "unknown") : statusBadge("unknown", "Never seen"),
      row.running_version ? h("div", { class: "small" }, `Runs ${row.running_version}${upToDate(row.up_to_date)}`) : null,
    ),
    h(
      "td",
      { class: "col-actions" },
      h(
        "div",
        { class: "actions" },
        busy ? h("span", { class: "muted small" }, `${KIND_WORDS[row.job.kind][0]}…`) : null,
        button("Validate", () => start(row, "validate")),
        button("Compile", () => start(row, "compile")),
        compiled ? button("Download", () => download(row)) : null,
        compiled ? button("To OTA", () => toOta(row)) : null,
      ),
    ),
  );
}

function validatedText(row) {
  const v = row.validated;
  if (!v) return "—";
  const when = h("span", { title: formatDateTime(v.at) }, `${v.ok ? "Valid" : "Invalid"} · ${formatAgo(v.at)}`);
  return [when, v.outdated ? h("div", { class: "muted small" }, "YAML changed since") : null];
}

function upToDate(value) {
  if (value === true) return " (as compiled)";
  if (value === false) return " (not the compiled build)";
  return "";
}
