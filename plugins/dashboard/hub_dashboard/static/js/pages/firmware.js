/**
 * Firmware (the `ota` plugin): upload an image, start a staged rollout, and watch rollouts
 * progress live (`ota_rollout_updated` over the WebSocket), with pause, resume and cancel.
 *
 * Without the ota plugin the API answers 404 and the page says the plugin is not loaded.
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { h, notice, replace } from "../dom.js";
import { formatAgo, formatDateTime, formatValue } from "../format.js";

const STAGES = {
  canary: { label: "One node first, then 10 %, 50 %, 100 %", stages: [{ nodes: 1 }, 10, 50, 100] },
  all: { label: "Every node at once", stages: [100] },
};
const ROLLOUT_LABELS = {
  running: "Running",
  paused: "Paused",
  completed: "Completed",
  cancelled: "Cancelled",
  aborted: "Aborted",
};
const ROLLOUT_BADGE = {
  running: "online",
  paused: "stale",
  completed: "online",
  cancelled: "unknown",
  aborted: "offline",
};

export function mount(main, { socket, setTitle }) {
  setTitle("Firmware");
  const rollouts = new Map();
  const rolloutCards = new Map();
  const status = h("div");
  const images = h("tbody");
  const imagesTable = h(
    "table",
    { class: "table firmware cards", hidden: true },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Version", "Chip", "Size", "Uploaded", "SHA-256"].map((t) => h("th", null, t)),
      ),
    ),
    images,
  );
  const imagesNote = h("div");
  const rolloutList = h("div", { class: "rollouts" });
  const rolloutNote = h("div");
  const upload = uploadForm(() => loadImages());
  const start = h("form", { class: "inline-form rollout-form" });
  const startError = h("p", { class: "form-error", role: "alert", hidden: true });
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", null, "Firmware")),
    status,
    h("section", { class: "card" }, h("h2", null, "Upload an image"), upload),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Images"),
      h("div", { class: "scroll" }, imagesTable),
      imagesNote,
    ),
    h("section", { class: "card" }, h("h2", null, "Start a rollout"), start, startError),
    h("section", null, h("h2", null, "Rollouts"), rolloutNote, rolloutList),
  );

  async function loadImages() {
    let firmware;
    try {
      ({ firmware } = await api("GET", "/api/ota/firmware"));
    } catch (err) {
      if (isSignedOut(err)) return;
      replace(
        status,
        notice(err.status === 404 ? "The ota plugin is not loaded: no firmware here." : errorMessage(err), "error"),
      );
      return;
    }
    replace(
      images,
      firmware.map((f) =>
        h(
          "tr",
          { dataset: { version: f.version } },
          h("td", { class: "mono" }, f.version),
          h("td", { dataset: { label: "Chip" } }, f.chip),
          h("td", { dataset: { label: "Size" } }, formatValue(f.size, "B")),
          h(
            "td",
            { title: formatDateTime(f.uploaded_at), dataset: { label: "Uploaded" } },
            `${formatAgo(f.uploaded_at)} by ${f.uploaded_by}`,
          ),
          h("td", { class: "mono small", title: f.sha256, dataset: { label: "SHA-256" } }, f.sha256.slice(0, 12)),
        ),
      ),
    );
    imagesTable.hidden = !firmware.length;
    replace(imagesNote, firmware.length ? null : notice("No firmware uploaded yet."));
    await buildStartForm(firmware);
  }

  async function buildStartForm(firmware) {
    if (!firmware.length) {
      replace(start, notice("Upload an image first."));
      return;
    }
    let areas = { areas: [], tags: [] };
    try {
      areas = await api("GET", "/api/areas");
    } catch (err) {
      if (isSignedOut(err)) return;
    }
    const version = h(
      "select",
      { id: "rollout-firmware" },
      firmware.map((f) => h("option", { value: f.version }, f.version)),
    );
    const target = h(
      "select",
      { id: "rollout-target" },
      h("option", { value: "" }, "Every node not on this version"),
      areas.areas.map((a) => h("option", { value: `area:${a.area}` }, `Area: ${a.area}`)),
      areas.tags.map((t) => h("option", { value: `tag:${t.tag}` }, `Tag: ${t.tag}`)),
    );
    const stages = h(
      "select",
      { id: "rollout-stages" },
      Object.entries(STAGES).map(([key, spec]) => h("option", { value: key }, spec.label)),
    );
    replace(
      start,
      field("rollout-firmware", "Firmware", version),
      field("rollout-target", "Nodes", target),
      field("rollout-stages", "Stages", stages),
      h("button", { type: "submit", class: "button primary" }, "Start rollout"),
    );
    start.onsubmit = async (event) => {
      event.preventDefault();
      startError.hidden = true;
      const chosen = { not_version: version.value };
      if (target.value.startsWith("area:")) chosen.area = target.value.slice(5);
      if (target.value.startsWith("tag:")) chosen.tags = [target.value.slice(4)];
      try {
        const body = { firmware: version.value, target: chosen, stages: STAGES[stages.value].stages };
        show(await api("POST", "/api/ota/rollouts", { body }));
      } catch (err) {
        if (isSignedOut(err)) return;
        startError.textContent = errorMessage(err);
        startError.hidden = false;
      }
    };
  }

  async function loadRollouts() {
    try {
      const { rollouts: list } = await api("GET", "/api/ota/rollouts?limit=20");
      for (const rollout of list) show(rollout);
      replace(rolloutNote, list.length || rollouts.size ? null : notice("No rollouts yet."));
    } catch (err) {
      if (!isSignedOut(err) && err.status !== 404) replace(rolloutNote, notice(errorMessage(err), "error"));
    }
  }

  /** Draw (or redraw) a rollout from its summary; newer summaries win. */
  function show(rollout) {
    const known = rollouts.get(rollout.id);
    if (known && known.updated_at > rollout.updated_at) return;
    rollouts.set(rollout.id, rollout);
    replace(rolloutNote);
    let card = rolloutCards.get(rollout.id);
    if (!card) {
      card = h("article", { class: "card rollout", dataset: { rolloutId: rollout.id } });
      rolloutCards.set(rollout.id, card);
      rolloutList.prepend(card);
    }
    replace(card, ...rolloutView(rollout, act));
  }

  async function act(rollout, action) {
    try {
      show(await api("POST", `/api/ota/rollouts/${encodeURIComponent(rollout.id)}/${action}`));
    } catch (err) {
      if (!isSignedOut(err)) replace(status, notice(errorMessage(err), "error"));
    }
  }

  const unsubscribe = socket.subscribe("ota_rollout_updated", null, (event) => show(event.data.rollout));
  const unready = socket.onReady(loadRollouts); // after a reconnect: what changed meanwhile
  loadImages();
  return () => {
    unsubscribe();
    unready();
  };
}

function field(id, label, control) {
  return h("div", { class: "field narrow-field" }, h("label", { for: id }, label), control);
}

function uploadForm(onUploaded) {
  const file = h("input", { type: "file", id: "firmware-file", accept: ".bin", required: true });
  const version = h("input", { id: "firmware-version", maxlength: 64, placeholder: "from the image" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const done = h("p", { class: "callout success", role: "status", hidden: true });
  const submit = h("button", { type: "submit", class: "button primary" }, "Upload");
  const form = h(
    "form",
    { class: "inline-form" },
    h("div", { class: "field" }, h("label", { for: "firmware-file" }, "Image (.bin)"), file),
    h("div", { class: "field narrow-field" }, h("label", { for: "firmware-version" }, "Version"), version),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    done.hidden = true;
    const body = new FormData();
    body.append("file", file.files[0]);
    if (version.value.trim()) body.append("version", version.value.trim());
    submit.disabled = true;
    try {
      const row = await api("POST", "/api/ota/firmware", { body });
      done.textContent = `Version ${row.version} (${row.chip}, ${formatValue(row.size, "B")}) is ready to roll out.`;
      done.hidden = false;
      form.reset();
      onUploaded();
    } catch (err) {
      if (isSignedOut(err)) return;
      error.textContent = errorMessage(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return h("div", null, form, error, done);
}

/** A rollout's card: name, status, stage, a progress bar with the counts in words, and its actions. */
function rolloutView(rollout, act) {
  const c = rollout.counts;
  const total = rollout.total || 1;
  const busy = (c.sending || 0) + (c.installing || 0);
  const bar = h("div", { class: "progress", role: "img" });
  for (const [kind, n] of [
    ["succeeded", c.succeeded],
    ["failed", c.failed],
    ["busy", busy],
  ]) {
    const part = h("span", { class: `progress-${kind}` });
    part.style.width = `${(100 * (n || 0)) / total}%`;
    bar.append(part);
  }
  const words =
    `${c.succeeded} of ${rollout.total} updated` +
    (c.failed ? ` · ${c.failed} failed` : "") +
    (busy ? ` · ${busy} in progress` : "") +
    (c.skipped ? ` · ${c.skipped} skipped` : "");
  bar.setAttribute("aria-label", words);
  const buttons = [];
  const button = (label, action, cls = "button") =>
    h("button", { type: "button", class: cls, onclick: () => act(rollout, action) }, label);
  if (rollout.status === "running") buttons.push(button("Pause", "pause"));
  if (rollout.status === "paused") buttons.push(button("Resume", "resume"));
  if (rollout.status === "running" || rollout.status === "paused")
    buttons.push(button("Cancel rollout", "cancel", "button subtle danger-text"));
  const stages = rollout.stage_sizes.length;
  return [
    h(
      "div",
      { class: "rollout-head" },
      h("h3", null, rollout.name || `Version ${rollout.version}`),
      h(
        "span",
        { class: `badge status-${ROLLOUT_BADGE[rollout.status] ?? "unknown"} rollout-status` },
        h("span", { class: "status-icon", "aria-hidden": "true" }),
        ROLLOUT_LABELS[rollout.status] ?? rollout.status,
      ),
    ),
    h(
      "p",
      { class: "muted small" },
      `Stage ${Math.min(rollout.stage + 1, stages)} of ${stages} · started ${formatAgo(rollout.created_at)} by ${rollout.created_by}`,
      rollout.reason ? ` · ${rollout.reason}` : "",
    ),
    bar,
    h("p", { class: "rollout-counts" }, words),
    buttons.length ? h("div", { class: "actions" }, buttons) : null,
  ];
}
