/**
 * Building the page without markup.
 *
 * Everything on screen that came from a device or a user (names, descriptions,
 * attribute strings, token names) goes through these helpers, which create
 * elements with `document.createElement` and put strings in text nodes.  No
 * string is ever parsed as HTML, so `<img src=x onerror=alert(1)>` as a node
 * name is shown as exactly those characters.  (The shell's Content-Security-
 * Policy is the second lock on the same door.)
 */

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, any> | null} [props] `class`, `dataset`, `on<event>` handlers (functions only),
 *   boolean or string attributes; null/undefined/false values are skipped.
 * @param {...any} children strings, numbers, nodes, arrays of those; null/false skipped.
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "dataset") Object.assign(el.dataset, value);
      else if (name.startsWith("on")) {
        if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
        el.addEventListener(name.slice(2), value);
      } else if (name === "value" || name === "checked") el[name] = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (see {@link h}) to `parent`; strings become text nodes. */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.append(child);
    else parent.append(document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace the contents of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Set an element's text only when it changed (cheap repeated updates from live events). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** A link inside the app (the router intercepts clicks on same-origin links). */
export function link(path, props, ...children) {
  return h("a", { ...props, href: path }, ...children);
}

/** The URL path of a node's page (node ids are MACs: `aa:bb:…`, encoded to be safe). */
export function nodePath(nodeId) {
  return `/nodes/${encodeURIComponent(nodeId)}`;
}

/**
 * A status badge: an icon whose shape differs per status (so colour is never the only cue; drawn by
 * CSS, so the badge's text is the word alone) and the word; `label` overrides the word (e.g. "Connected" in the colours of online).
 */
export function statusBadge(status, label) {
  const badge = h(
    "span",
    { class: `badge status-${status}` },
    h("span", { class: "status-icon", "aria-hidden": "true" }),
  );
  badge.append(label ?? STATUS_LABELS[status] ?? status);
  return badge;
}

/** Update a badge made by {@link statusBadge} in place. */
export function updateStatusBadge(badge, status) {
  const cls = `badge status-${status}`;
  if (badge.className !== cls) {
    badge.className = cls;
    badge.lastChild.textContent = STATUS_LABELS[status] ?? status;
  }
}

export const STATUS_LABELS = { online: "Online", offline: "Offline", stale: "Stale", unknown: "Unknown" };


/** A small "loading / empty / error" message block. */
export function notice(text, kind = "muted") {
  return h("p", { class: `notice ${kind}` }, text);
}
