/**
 * The client-side model of nodes: API objects kept current by WebSocket events.
 *
 * Both the fleet and the node page hold nodes as the API returns them
 * (`GET /api/nodes/{id}`), with `entities` turned into a Map by key, and apply
 * the hub's events to them with {@link applyEvent}.
 */
import { serverNow } from "./format.js";

/** The event types a node view listens to (one subscription each; never `state_changed`, one per entity). */
export const NODE_EVENTS = [
  "node_registered",
  "node_updated",
  "node_removed",
  "entity_registered",
  "state_reported",
  "node_status_changed",
];

/** An API node with its entities as a Map by key. */
export function fromApi(node) {
  return { ...node, entities: new Map(node.entities.map((entity) => [entity.key, entity])) };
}

/**
 * Apply one event to `node` (which must be the event's node); returns what it touched:
 * `"states"`, `"status"`, `"info"` (name, description, firmware, attributes) or `"entities"`.
 */
export function applyEvent(node, event) {
  const data = event.data;
  switch (event.event_type) {
    case "state_reported":
      node.last_seen = event.time_fired;
      for (const [key, value] of Object.entries(data.states)) {
        const entity = node.entities.get(key);
        if (!entity) continue;
        if (entity.state !== value || entity.last_changed === null) {
          entity.state = value;
          entity.last_changed = data.ts;
        }
        entity.last_reported = data.ts;
      }
      return "states";
    case "node_status_changed":
      node.status = data.new;
      node.status_reason = data.reason;
      node.status_since = data.ts;
      return "status";
    case "node_updated":
      for (const [field, value] of Object.entries(data.changes)) {
        if (field === "attributes") node.attributes = { ...node.attributes, ...value };
        else node[field] = value;
      }
      return "info";
    case "entity_registered":
      if (!node.entities.has(data.entity.key)) node.entities.set(data.entity.key, data.entity);
      return "entities";
    default:
      return null;
  }
}

/** Seconds of silence after which an online node is shown as stale (config `dashboard: stale_after`). */
export const STALE_AFTER = Number(document.body.dataset.staleAfter) || 120;

/** online / stale / offline / unknown: the hub's status, with "stale" for online nodes silent too long. */
export function displayStatus(node) {
  if (node.status === "online" && node.last_seen !== null && serverNow() - node.last_seen > STALE_AFTER) {
    return "stale";
  }
  return node.status === "online" || node.status === "offline" ? node.status : "unknown";
}

const PRIMARY = [
  "temperature",
  "humidity",
  "atmospheric_pressure",
  "pressure",
  "carbon_dioxide",
  "illuminance",
  "battery",
  "power",
  "energy",
  "voltage",
  "current",
  "moisture",
];
const DIAGNOSTIC = new Set(["duration", "data_size", "signal_strength"]);

/** Is this entity's state a number worth charting? */
export function isNumeric(entity) {
  return (
    typeof entity.state === "number" || (entity.state === null && entity.platform === "sensor" && entity.unit !== null)
  );
}

/** The few readings that say most about a node (measurements first, diagnostics like uptime last). */
export function keyReadings(node, count = 3) {
  const rank = (entity) => {
    const index = PRIMARY.indexOf(entity.device_class);
    if (index >= 0) return index;
    return DIAGNOSTIC.has(entity.device_class) ? 200 : 100;
  };
  return [...node.entities.values()]
    .filter((entity) => entity.state !== null && entity.state !== undefined)
    .sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key))
    .slice(0, count);
}

/** MAC-ish text without separators, for matching `aabbcc`, `AA:BB:CC` and `aa-bb-cc` alike. */
export function compactId(text) {
  return text.toLowerCase().replace(/[^0-9a-z]/g, "");
}
