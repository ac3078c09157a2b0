/**
 * One node: its readings, a chart per numeric entity over a chosen range, its
 * status history and attributes; rename, describe or delete it.
 *
 * The node itself comes over the WebSocket (`get_node`, then its events), so
 * values, status and charts move live; histories come from the REST history
 * endpoint and are reloaded after a reconnect, since events missed meanwhile
 * are not replayed.
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { h, link, notice, replace, setText, statusBadge, updateStatusBadge } from "../dom.js";
import { formatAgo, formatDateTime, formatDuration, formatTime, formatValue, serverNow } from "../format.js";
import { NodeCommands } from "../node-commands.js";
import { openEditor } from "../node-editor.js";
import { NodeHistory } from "../node-history.js";
import { applyEvent, displayStatus, fromApi, NODE_EVENTS } from "../nodes.js";

const STATUS_HISTORY_LIMIT = 50;
const REASONS = {
  message: "it reported",
  lwt: "it (or its Last Will) said offline",
  timeout: "it stayed silent too long",
};

export function mount(main, { params: [nodeId], socket, setTitle }) {
  let node = null;
  let editing = false;
  const tiles = new Map();
  const history = new NodeHistory(nodeId);

  // --- skeleton ----------------------------------------------------------------------------
  const title = h("h1", { class: "node-title" });
  const badge = statusBadge("unknown");
  const idLine = h("p", { class: "mono muted node-id" }, nodeId);
  const editButton = h("button", { type: "button", class: "button", onclick: () => setEditing(true) }, "Edit");
  const head = h(
    "div",
    { class: "page-head" },
    h(
      "div",
      { class: "head-main" },
      link("/", { class: "back" }, "← Fleet"),
      h("div", { class: "title-row" }, title, badge),
      idLine,
    ),
    h("div", { class: "head-actions" }, editButton),
  );
  const editor = h("section", { class: "card editor", hidden: true });
  const description = h("p", { class: "description" });
  const info = {
    status: h("dd"),
    lastSeen: h("dd"),
    firstSeen: h("dd"),
    firmware: h("dd"),
    area: h("dd"),
    definedBy: h("dd"),
  };
  const infoCard = h(
    "section",
    { class: "card" },
    description,
    h(
      "dl",
      { class: "facts" },
      h("div", null, h("dt", null, "Status"), info.status),
      h("div", null, h("dt", null, "Last seen"), info.lastSeen),
      h("div", null, h("dt", null, "First seen"), info.firstSeen),
      h("div", null, h("dt", null, "Firmware"), info.firmware),
      h("div", null, h("dt", null, "Area and tags"), info.area),
      h("div", { class: "defined-by", hidden: true }, h("dt", null, "Defined in"), info.definedBy),
    ),
  );
  const readings = h("div", { class: "tiles" });
  const statusRows = h("tbody");
  const statusNotice = h("div");
  const attributes = h("tbody");
  const attributesCard = h(
    "section",
    { class: "card", hidden: true },
    h("h2", null, "Attributes"),
    h("table", { class: "table kv" }, attributes),
  );
  // Commands (and, with the OTA work, firmware updates) go into this slot.
  const commands = new NodeCommands(nodeId, socket);
  const extensions = h("div", { class: "node-extensions", dataset: { slot: "node-actions" } }, commands.element);
  const body = h(
    "div",
    { class: "node-page", hidden: true },
    head,
    editor,
    infoCard,
    h("section", null, h("h2", null, "Readings"), readings),
    extensions,
    history.element,
    h(
      "section",
      { class: "card" },
      h("h2", null, "Status history"),
      statusNotice,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "table status-history" },
          h("thead", null, h("tr", null, h("th", null, "When"), h("th", null, "Change"), h("th", null, "Why"))),
          statusRows,
        ),
      ),
    ),
    attributesCard,
  );
  const placeholder = notice("Loading…");
  replace(main, placeholder, body);

  // --- rendering ---------------------------------------------------------------------------
  function renderInfo() {
    setTitle(node.name);
    setText(title, node.name);
    setText(description, node.description || "No description.");
    description.classList.toggle("muted", !node.description);
    setText(info.firmware, node.firmware_version || "—");
    replace(
      info.area,
      node.area ? h("span", { class: "area-name" }, node.area) : h("span", { class: "muted" }, "No area"),
      (node.tags || []).map((tag) => [" ", h("span", { class: "tag" }, tag)]),
    );
    // An ESPHome node defined in the hub's firmware folder: which YAML, and where to build it.
    const yamlFile = node.attributes.esphome_yaml;
    info.definedBy.parentElement.hidden = !yamlFile;
    replace(info.definedBy, yamlFile ? [h("span", { class: "mono" }, yamlFile), " ", link("/provisioning", null, "Provisioning")] : null);
    setText(info.firstSeen, formatTime(node.first_seen));
    info.firstSeen.title = formatDateTime(node.first_seen);
    const entries = Object.entries(node.attributes).sort(([a], [b]) => a.localeCompare(b));
    attributesCard.hidden = entries.length === 0;
    replace(
      attributes,
      entries.map(([key, value]) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, key),
          h("td", null, typeof value === "string" ? value : JSON.stringify(value)),
        ),
      ),
    );
  }

  function renderStatus() {
    const status = displayStatus(node);
    updateStatusBadge(badge, status);
    const since = node.status_since
      ? `since ${formatTime(node.status_since)} (${formatDuration(serverNow() - node.status_since)})`
      : "";
    const reason = REASONS[node.status_reason];
    replace(
      info.status,
      statusBadge(status),
      " ",
      h("span", { class: "muted" }, since),
      reason ? h("div", { class: "muted small" }, `because ${reason}`) : null,
    );
    setText(info.lastSeen, formatAgo(node.last_seen));
    info.lastSeen.title = formatDateTime(node.last_seen);
  }

  function renderReadings() {
    const entities = [...node.entities.values()];
    if (!entities.length) {
      replace(readings, notice("No readings yet."));
      tiles.clear();
      return;
    }
    if (tiles.size !== entities.length || readings.querySelector(".notice")) {
      tiles.clear();
      replace(
        readings,
        entities.map((entity) => {
          const value = h("div", { class: "tile-value" });
          const when = h("div", { class: "tile-when muted" });
          tiles.set(entity.key, { value, when });
          return h(
            "div",
            { class: "tile", dataset: { key: entity.key } },
            h("div", { class: "tile-name" }, entity.name || entity.key),
            value,
            when,
          );
        }),
      );
    }
    for (const entity of entities) {
      const tile = tiles.get(entity.key);
      setText(tile.value, formatValue(entity.state, entity.unit, entity.device_class));
      setText(tile.when, entity.last_changed ? `changed ${formatAgo(entity.last_changed)}` : "");
      tile.when.title = formatDateTime(entity.last_reported);
    }
  }

  async function loadStatusHistory() {
    try {
      const { history } = await api(
        "GET",
        `/api/nodes/${encodeURIComponent(nodeId)}/status_history?limit=${STATUS_HISTORY_LIMIT}`,
      );
      replace(statusRows, history.map(statusRow));
      replace(statusNotice, history.length ? null : notice("No status changes recorded."));
    } catch (err) {
      if (!isSignedOut(err)) replace(statusNotice, notice(errorMessage(err), "error"));
    }
  }

  function statusRow(change) {
    return h(
      "tr",
      null,
      h("td", { title: formatDateTime(change.ts) }, formatTime(change.ts)),
      h("td", null, change.old ? statusBadge(change.old) : "—", " → ", statusBadge(change.new)),
      h("td", { class: "muted" }, REASONS[change.reason] ?? change.reason ?? ""),
    );
  }

  // --- editing -----------------------------------------------------------------------------
  function setEditing(on) {
    editing = on;
    editor.hidden = !on;
    editButton.hidden = on;
    if (!on) return;
    openEditor(editor, node, {
      onSaved: (updated) => {
        node = { ...fromApi(updated), entities: node.entities };
        renderInfo();
        setEditing(false);
      },
      onDeleted: showGone,
      onClose: () => setEditing(false),
    });
  }

  function showGone() {
    node = null;
    body.hidden = true;
    replace(
      placeholder,
      h("span", null, "This node no longer exists (it was deleted). ", link("/", null, "Back to the fleet")),
    );
    placeholder.hidden = false;
    setTitle("Node deleted");
  }

  // --- live --------------------------------------------------------------------------------
  async function load() {
    try {
      node = fromApi(await socket.call("get_node", { node_id: nodeId }));
    } catch (err) {
      if (err.code === "node_not_found" || err.code === "invalid_format") {
        replace(
          placeholder,
          h("span", null, "There is no node ", h("code", null, nodeId), ". ", link("/", null, "Back to the fleet")),
        );
        setTitle("Unknown node");
      }
      return;
    }
    placeholder.hidden = true;
    body.hidden = false;
    renderInfo();
    renderStatus();
    renderReadings();
    history.sync(node);
    history.load();
    loadStatusHistory();
  }

  function onEvent(event) {
    if (!node) return;
    if (event.event_type === "node_removed") {
      showGone();
      return;
    }
    const touched = applyEvent(node, event);
    if (touched === "states") {
      history.addReadings(event.data.ts, event.data.states);
      renderReadings();
      renderStatus();
    } else if (touched === "status") {
      renderStatus();
      history.timeline.addChange(
        { ts: event.data.ts, old: event.data.old, new: event.data.new },
        displayStatus(node),
      );
      statusRows.prepend(
        statusRow({ ts: event.data.ts, old: event.data.old, new: event.data.new, reason: event.data.reason }),
      );
      replace(statusNotice);
    } else if (touched === "info") {
      if (!editing) renderInfo();
    } else if (touched === "entities") {
      renderReadings();
      if (history.sync(node)) history.load();
    }
  }

  const unsubscribes = NODE_EVENTS.filter((type) => type !== "node_registered").map((type) =>
    socket.subscribe(type, { nodeId }, onEvent),
  );
  const unready = socket.onReady(load);
  const ticker = setInterval(() => {
    if (node) {
      renderStatus();
      renderReadings();
    }
  }, 1000);

  return () => {
    clearInterval(ticker);
    unready();
    for (const unsubscribe of unsubscribes) unsubscribe();
    history.destroy();
    commands.destroy();
  };
}
