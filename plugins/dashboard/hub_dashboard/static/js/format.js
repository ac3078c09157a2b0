/**
 * Formatting numbers, durations and times for people, and the server's clock.
 *
 * "12 s ago" must be measured on the hub's clock, not the browser's (a laptop
 * a minute off would show every fresh node as a minute old), so the offset is
 * learned from the `time_fired` of WebSocket events and the `Date` header of
 * API responses.
 */

let offset = 0;

/**
 * Record a server timestamp (epoch seconds) seen just now; network latency is negligible here.
 * `precision` is how coarse the timestamp is (1 s for an HTTP Date header): a coarse one only
 * corrects an offset that is off by more than that, so it never undoes a precise one.
 */
export function observeServerTime(serverSeconds, precision = 0) {
  if (!Number.isFinite(serverSeconds)) return;
  const observed = serverSeconds - Date.now() / 1000;
  if (Math.abs(observed - offset) > precision) offset = observed;
}

/** The hub's current time in epoch seconds. */
export function serverNow() {
  return Date.now() / 1000 + offset;
}

const numberFormats = new Map();
function numberFormat(digits) {
  let format = numberFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { maximumFractionDigits: digits });
    numberFormats.set(digits, format);
  }
  return format;
}

/** A number as the device sent it, within reason: 123456, 1013.25, 25.4, 0.125. */
export function formatNumber(value) {
  const size = Math.abs(value);
  const digits = size >= 10000 ? 0 : size >= 1 ? 2 : 3;
  return numberFormat(digits).format(value);
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB"];

/** An entity's value with its unit: bytes scaled, durations spelled out, others as number + unit. */
export function formatValue(value, unit, deviceClass) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value !== "number") return typeof value === "string" ? value : JSON.stringify(value);
  if (unit === "B" && Math.abs(value) >= 1024) {
    let scaled = value;
    let index = 0;
    while (Math.abs(scaled) >= 1024 && index < BYTE_UNITS.length - 1) {
      scaled /= 1024;
      index += 1;
    }
    return `${formatNumber(scaled)} ${BYTE_UNITS[index]}`;
  }
  if (deviceClass === "duration" && unit === "s") return formatDuration(value);
  return unit ? `${formatNumber(value)} ${unit}` : formatNumber(value);
}

/** 59 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/** "just now", "12 s ago", "5 min ago", … for a past server timestamp; "never" for none. */
export function formatAgo(ts) {
  if (ts === null || ts === undefined) return "never";
  const age = serverNow() - ts;
  if (age < 1.5) return "just now";
  return `${formatDuration(age)} ago`;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** A timestamp as local date and time; only the time if it is today. */
export function formatTime(ts) {
  if (ts === null || ts === undefined) return "—";
  const date = new Date(ts * 1000);
  return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dateTimeFormat.format(date);
}

/** A timestamp as full local date and time (for tooltips). */
export function formatDateTime(ts) {
  return ts === null || ts === undefined ? "" : dateTimeFormat.format(new Date(ts * 1000));
}

const fixedFormats = new Map();
function fixedFormat(decimals) {
  let format = fixedFormats.get(decimals);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    fixedFormats.set(decimals, format);
  }
  return format;
}

function decimalsFor(step, limit) {
  let decimals = 0;
  while (
    decimals < limit &&
    Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6 * 10 ** decimals
  ) {
    decimals += 1;
  }
  return decimals;
}

/** Tick spacings that read well for durations (seconds) and for bytes (binary multiples). */
export const DURATION_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000,
];
export const BYTE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500]
  .flatMap((m) => [1, 1024, 1024 ** 2, 1024 ** 3].map((unit) => m * unit))
  .sort((a, b) => a - b);

/**
 * Labels for a chart axis's evenly spaced ticks: bytes and durations in the largest unit the
 * spacing is a whole number of (`176 KiB`, `15 min`), and as many decimals as the spacing needs,
 * so neighbouring labels never read the same.
 */
export function tickLabels(values, unit, deviceClass) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return values.map(() => "");
  const step = finite.length > 1 ? Math.abs(finite[1] - finite[0]) : 1;
  let scale = 1;
  let suffix = "";
  if (unit === "B") {
    const index = [3, 2, 1, 0].find((i) => step >= 1024 ** i) ?? 0;
    scale = 1024 ** index;
    suffix = ` ${BYTE_UNITS[index]}`;
  } else if (deviceClass === "duration" && unit === "s") {
    [scale, suffix] =
      step >= 86400 ? [86400, " d"] : step >= 3600 ? [3600, " h"] : step >= 60 ? [60, " min"] : [1, " s"];
  }
  const format = fixedFormat(decimalsFor(step / scale, 6));
  return values.map((v) => (Number.isFinite(v) ? format.format(v / scale) + suffix : ""));
}
