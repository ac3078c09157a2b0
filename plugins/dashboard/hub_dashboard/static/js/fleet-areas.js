/**
 * The fleet grouped by area: a heading row per area (nodes without one last, under "No area"),
 * with how many of the area's nodes are online, stale and offline, then the area's nodes in the
 * page's sort order.  Counts cover the whole area, whatever the filter or search shows.
 */
import { h, setText } from "./dom.js";
import { displayStatus } from "./nodes.js";

const NO_AREA = "";

/**
 * `selected` (filtered and sorted nodes) with a heading item before each area's nodes.
 * @param {any[]} selected
 * @param {Iterable<any>} everyNode the whole fleet, for the counts
 * @param {Intl.Collator} collator
 */
export function withAreaHeadings(selected, everyNode, collator) {
  const counts = new Map();
  for (const node of everyNode) {
    const area = node.area || NO_AREA;
    let count = counts.get(area);
    if (!count) counts.set(area, (count = { online: 0, stale: 0, offline: 0, unknown: 0 }));
    count[displayStatus(node)] += 1;
  }
  const groups = new Map();
  for (const node of selected) {
    const area = node.area || NO_AREA;
    if (!groups.has(area)) groups.set(area, []);
    groups.get(area).push(node);
  }
  const areas = [...groups.keys()].sort((a, b) =>
    a === NO_AREA ? 1 : b === NO_AREA ? -1 : collator.compare(a, b),
  );
  return areas.flatMap((area) => [{ heading: true, area, counts: counts.get(area) }, ...groups.get(area)]);
}

/** The key of a fleet list item (a node or an area heading). */
export function itemKey(item) {
  return item.heading ? `area:${item.area}` : item.node_id;
}

export function createAreaRow(item) {
  const name = h("span", { class: "area-name" });
  const counts = h("span", { class: "area-counts muted small" });
  const tr = h(
    "tr",
    { class: "area-row", dataset: { area: item.area } },
    h("th", { colspan: 5, scope: "colgroup" }, name, counts),
  );
  return { tr, name, counts };
}

export function updateAreaRow(row, item) {
  setText(row.name, item.area || "No area");
  const c = item.counts;
  const parts = [`${c.online} online`, `${c.stale} stale`, `${c.offline} offline`];
  if (c.unknown) parts.push(`${c.unknown} unknown`);
  setText(row.counts, parts.join(" · "));
}
