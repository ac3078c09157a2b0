/**
 * The fleet: every node with its live status, last seen, key readings and firmware; counts per
 * status that double as filters; search by name or MAC.
 *
 * The list is loaded over the WebSocket (`get_nodes`, page by page: the hub
 * answers at most 1,000 nodes at a time) after subscribing, so no event can fall
 * between the snapshot and the stream (the hub sends the events that happen while
 * a page is built after that page), and reloaded after every reconnect.  Events only change the model; the table is redrawn at most once
 * per animation frame and only in the rows that changed, and only the rows near
 * the window exist at all (virtual-rows.js), so a fleet of 10,000 busy nodes
 * costs the browser little.  Filter and search live in the URL (`?status=&q=`),
 * the sort order in localStorage.
 */
import { h, link, nodePath, notice, replace, setText, statusBadge, updateStatusBadge } from "../dom.js";
import { formatAgo, formatDateTime, formatDuration, formatValue, serverNow } from "../format.js";
import { applyEvent, compactId, displayStatus, fromApi, keyReadings, NODE_EVENTS } from "../nodes.js";
import { VirtualRows } from "../virtual-rows.js";
import { createAreaRow, itemKey, updateAreaRow, withAreaHeadings } from "../fleet-areas.js";

const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });
const PAGE_SIZE = 1000;
const SORT_KEY = "hub.fleet.sort";
const GROUP_KEY = "hub.fleet.group";
const SORTS = [
  ["name", "Name"],
  ["status", "Status (problems first)"],
  ["last_seen", "Last seen (silent first)"],
];
const STATUS_ORDER = { offline: 0, stale: 1, unknown: 2, online: 3 };
const FILTERS = [
  ["all", "All"],
  ["online", "Online"],
  ["stale", "Stale"],
  ["offline", "Offline"],
  ["unknown", "Unknown"],
];

export function mount(main, { socket, setTitle }) {
  setTitle("Fleet");
  const params = new URLSearchParams(location.search);
  let filter = FILTERS.some(([key]) => key === params.get("status")) ? params.get("status") : "all";
  let query = params.get("q") || "";
  let grouped = localStorage.getItem(GROUP_KEY) === "area";
  let sort = SORTS.some(([key]) => key === localStorage.getItem(SORT_KEY)) ? localStorage.getItem(SORT_KEY) : "name";
  const nodes = new Map();
  const dirty = new Set();
  let loaded = false;
  let loads = 0;
  let incoming = null; // the fleet being loaded, page by page (null when not loading)
  let structural = true;
  let frame = 0;

  // --- skeleton ----------------------------------------------------------------------------
  const countEls = new Map();
  const filterButtons = FILTERS.map(([key, label]) => {
    const count = h("span", { class: "stat-count" }, "–");
    countEls.set(key, count);
    return h(
      "button",
      {
        type: "button",
        class: `stat stat-${key}`,
        dataset: { filter: key },
        "aria-pressed": String(key === filter),
        // Pressing the active card again clears the filter.
        onclick: () => setFilter(key === filter ? "all" : key),
      },
      count,
      h("span", { class: "stat-label" }, label),
    );
  });
  const search = h("input", {
    type: "search",
    class: "search",
    placeholder: "Search name, MAC, area, tag",
    "aria-label": "Search nodes by name or MAC",
    value: query,
    maxlength: 100,
  });
  const sortSelect = h(
    "select",
    {
      id: "fleet-sort",
      onchange: () => {
        sort = sortSelect.value;
        localStorage.setItem(SORT_KEY, sort);
        structural = true;
        schedule();
      },
    },
    SORTS.map(([key, label]) => h("option", { value: key }, label)),
  );
  sortSelect.value = sort;
  let searchTimer = 0;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query = search.value.trim();
      syncUrl();
      structural = true;
      schedule();
    }, 80);
  });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table fleet" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, "Node"),
        h("th", null, "Status"),
        h("th", null, "Last seen"),
        h("th", { class: "col-readings" }, "Readings"),
        h("th", { class: "col-firmware" }, "Firmware"),
      ),
    ),
    tbody,
  );
  const below = h("div", { class: "table-foot" });
  const list = new VirtualRows(tbody, {
    columns: 5,
    create: (item) => (item.heading ? createAreaRow(item) : createRow(item)),
    update: (row, item) => (item.heading ? updateAreaRow(row, item) : updateRow(row, item)),
    key: itemKey,
  });
  const groupBox = h("input", {
    type: "checkbox",
    id: "fleet-group",
    checked: grouped,
    onchange: () => {
      grouped = groupBox.checked;
      localStorage.setItem(GROUP_KEY, grouped ? "area" : "none");
      structural = true;
      schedule();
    },
  });
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Fleet"),
      h(
        "div",
        { class: "fleet-tools" },
        search,
        h("label", { class: "sort" }, h("span", null, "Sort by"), sortSelect),
        h("label", { class: "check group-toggle" }, groupBox, "Group by area"),
      ),
    ),
    h("div", { class: "stats", role: "group", "aria-label": "Filter by status" }, filterButtons),
    h("section", { class: "card table-card" }, table, below),
  );

  // --- model -------------------------------------------------------------------------------
  function matches(node) {
    if (filter !== "all" && displayStatus(node) !== filter) return false;
    return matchesQuery(node);
  }

  function matchesQuery(node) {
    if (!query) return true;
    const needle = query.toLowerCase();
    if (node.name.toLowerCase().includes(needle) || node.node_id.includes(needle)) return true;
    if (node.area && node.area.toLowerCase().includes(needle)) return true;
    if (node.tags && node.tags.some((tag) => tag.includes(needle))) return true;
    const compact = compactId(query);
    return compact.length >= 2 && compactId(node.node_id).includes(compact);
  }

  function byName(a, b) {
    return collator.compare(a.name, b.name) || (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0);
  }

  function comparator() {
    if (sort === "status") {
      return (a, b) => STATUS_ORDER[displayStatus(a)] - STATUS_ORDER[displayStatus(b)] || byName(a, b);
    }
    if (sort === "last_seen") return (a, b) => (a.last_seen ?? 0) - (b.last_seen ?? 0) || byName(a, b);
    return byName;
  }

  /** Apply a node event to `model`: "structural" (the list changes), "row" (one row does) or null (not ours). */
  function applyTo(model, event) {
    const id = event.data.node_id;
    if (event.event_type === "node_registered") {
      model.set(id, fromApi(event.data.node));
      return "structural";
    }
    if (event.event_type === "node_removed") {
      model.delete(id);
      return "structural";
    }
    const node = model.get(id);
    if (!node) return null;
    const before = displayStatus(node);
    const touched = applyEvent(node, event);
    // Sorted by last seen, the order moves with every reading: the 1-s ticker re-sorts instead.
    const regrouped = touched === "info" && ("name" in event.data.changes || "area" in event.data.changes);
    return displayStatus(node) !== before || regrouped ? "structural" : "row";
  }

  function onEvent(event) {
    // A page already in is kept current; a node of a page still to come is older than that page.
    if (incoming) applyTo(incoming, event);
    const change = applyTo(nodes, event);
    if (!change) return;
    if (change === "structural") structural = true;
    else dirty.add(event.data.node_id);
    schedule();
  }

  /**
   * Every page into a fresh model that events keep current meanwhile (see onEvent); the list on
   * screen (after a reconnect: the last one) is replaced once the last page is in.  A node
   * registered during the load arrives as an event or in a later page.
   */
  async function load() {
    const generation = ++loads;
    const fresh = new Map();
    incoming = fresh;
    try {
      let cursor = null;
      do {
        const page = await socket.call("get_nodes", cursor ? { limit: PAGE_SIZE, cursor } : { limit: PAGE_SIZE });
        if (generation !== loads) return; // a reconnect started a newer load
        for (const node of page.nodes) fresh.set(node.node_id, fromApi(node));
        cursor = page.next;
      } while (cursor);
      nodes.clear();
      for (const [id, node] of fresh) nodes.set(id, node);
      loaded = true;
      structural = true;
      schedule();
    } catch {
      // The connection dropped while loading: the next ready callback loads again.
    } finally {
      if (generation === loads) incoming = null;
    }
  }

  // --- view --------------------------------------------------------------------------------
  function schedule() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function flush() {
    frame = 0;
    if (!loaded) return;
    if (structural) {
      structural = false;
      rebuild();
    } else {
      list.refresh(dirty);
    }
    dirty.clear();
    updateCounts();
  }

  function rebuild() {
    const selected = [...nodes.values()].filter(matches).sort(comparator());
    table.hidden = !selected.length;
    list.setItems(grouped ? withAreaHeadings(selected, nodes.values(), collator) : selected);
    if (!nodes.size) {
      replace(below, notice("No nodes yet. Nodes appear here, live, as soon as they report to the hub."));
    } else if (!selected.length) {
      replace(below, emptyMessage());
    } else {
      replace(below);
    }
  }

  /** Why the list is empty, and the one click that shows something. */
  function emptyMessage() {
    const label = FILTERS.find(([key]) => key === filter)[1].toLowerCase();
    const button = (text, onclick) => h("button", { type: "button", class: "button subtle", onclick }, text);
    if (filter !== "all" && query) {
      let elsewhere = 0;
      for (const node of nodes.values()) if (matchesQuery(node)) elsewhere += 1;
      return elsewhere
        ? [
            notice(`No ${label} node matches “${query}”; ${elsewhere} in other statuses do.`),
            button("Show all statuses", () => setFilter("all")),
          ]
        : [notice(`No node matches “${query}”.`), button("Clear search", clearSearch)];
    }
    if (query) return [notice(`No node matches “${query}”.`), button("Clear search", clearSearch)];
    return [notice(`No ${label} nodes right now.`), button("Show all nodes", () => setFilter("all"))];
  }

  function createRow(node) {
    const name = link(nodePath(node.node_id), { class: "node-name" });
    const cells = {
      name,
      badge: statusBadge("unknown"),
      since: h("div", { class: "muted small" }),
      lastSeen: h("td", { class: "last-seen" }),
      readings: h("div", { class: "readings" }),
      firmware: h("td", { class: "mono col-firmware" }),
    };
    const tr = h(
      "tr",
      { dataset: { nodeId: node.node_id } },
      h("td", { class: "cell-node" }, name, h("div", { class: "mono muted small" }, node.node_id)),
      h("td", { class: "cell-status" }, cells.badge, cells.since),
      cells.lastSeen,
      h("td", { class: "col-readings" }, cells.readings),
      cells.firmware,
    );
    return { tr, ...cells, readingsKey: "" };
  }

  function updateRow(row, node) {
    setText(row.name, node.name);
    updateStatusBadge(row.badge, displayStatus(node));
    setText(row.since, node.status_since ? `for ${formatDuration(serverNow() - node.status_since)}` : "");
    row.since.title = node.status_since ? `since ${formatDateTime(node.status_since)}` : "";
    setText(row.lastSeen, formatAgo(node.last_seen));
    row.lastSeen.title = formatDateTime(node.last_seen);
    setText(row.firmware, node.firmware_version || "—");
    const readings = keyReadings(node);
    const texts = readings.map((entity) => formatValue(entity.state, entity.unit, entity.device_class));
    const key = texts.join("\u0000");
    if (key !== row.readingsKey) {
      row.readingsKey = key;
      replace(
        row.readings,
        readings.map((entity, i) =>
          h(
            "span",
            { class: "reading" },
            h("span", { class: "reading-label" }, entity.name || entity.key),
            " ",
            h("span", { class: "reading-value" }, texts[i]),
          ),
        ),
      );
    }
  }

  function updateCounts() {
    const counts = { all: nodes.size, online: 0, stale: 0, offline: 0, unknown: 0 };
    for (const node of nodes.values()) counts[displayStatus(node)] += 1;
    for (const [key, el] of countEls) setText(el, loaded ? counts[key] : "–");
    filterButtons[FILTERS.findIndex(([key]) => key === "unknown")].hidden =
      counts.unknown === 0 && filter !== "unknown";
  }

  function setFilter(key) {
    filter = key;
    for (const button of filterButtons) button.setAttribute("aria-pressed", String(button.dataset.filter === key));
    syncUrl();
    structural = true;
    schedule();
  }

  function clearSearch() {
    search.value = "";
    query = "";
    syncUrl();
    structural = true;
    schedule();
    search.focus();
  }

  function syncUrl() {
    const next = new URLSearchParams();
    if (filter !== "all") next.set("status", filter);
    if (query) next.set("q", query);
    const qs = next.toString();
    history.replaceState(null, "", qs ? `/?${qs}` : "/");
  }

  replace(below, notice("Connecting to the hub…"));
  const unsubscribes = NODE_EVENTS.map((type) => socket.subscribe(type, null, onEvent));
  const unready = socket.onReady(load);
  // Ages tick every second; "stale" depends on the clock too, so filters and counts are redone.
  const ticker = setInterval(() => {
    if (filter === "stale" || filter === "online" || sort !== "name" || grouped) structural = true;
    else for (const id of list.drawnKeys) dirty.add(id);
    schedule();
  }, 1000);

  // "/" jumps to the search box, as on many sites.
  const onKey = (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    event.preventDefault();
    search.focus();
  };
  document.addEventListener("keydown", onKey);

  return () => {
    document.removeEventListener("keydown", onKey);
    list.destroy();
    clearInterval(ticker);
    clearTimeout(searchTimer);
    cancelAnimationFrame(frame);
    unready();
    for (const unsubscribe of unsubscribes) unsubscribe();
  };
}
