/**
 * The dashboard app: routes URLs to pages, draws the frame (header, navigation,
 * connection state), and sends visitors without a session to the sign-in page.
 *
 * A page is a module exporting `mount(main, ctx)` that renders into `main` and
 * returns a function that undoes what it set up (subscriptions, timers).
 * `ctx` carries the route parameters, the shared {@link HubSocket}, `navigate`
 * and `setTitle`.
 */
import "./theme.js";
import { api, isSignedOut } from "./api.js";
import { isSignedIn, onSignedOut, signOut } from "./auth.js";
import { h, link, replace } from "./dom.js";
import { healthBanner } from "./health-banner.js";
import * as firmware from "./pages/firmware.js";
import * as fleet from "./pages/fleet.js";
import * as node from "./pages/node.js";
import * as onboarding from "./pages/onboarding.js";
import * as provisioning from "./pages/provisioning.js";
import * as signin from "./pages/signin.js";
import * as system from "./pages/system.js";
import * as tokens from "./pages/tokens.js";
import { HubSocket } from "./socket.js";
import { setTheme, THEMES, themeChoice } from "./theme.js";

const ROUTES = [
  { pattern: /^\/$/, page: fleet, nav: "fleet" },
  { pattern: /^\/nodes\/([^/]+)$/, page: node, nav: "fleet" },
  { pattern: /^\/firmware$/, page: firmware, nav: "firmware" },
  { pattern: /^\/provisioning$/, page: provisioning, nav: "provisioning" },
  { pattern: /^\/system$/, page: system, nav: "system" },
  { pattern: /^\/tokens$/, page: tokens, nav: "tokens" },
  { pattern: /^\/signin$/, page: signin, public: true },
  { pattern: /^\/onboarding$/, page: onboarding, public: true },
];

const socket = new HubSocket();
let dispose = null;
let frame = null;
let signedOutReason = null;
let moveFocus = false;

/** Go to an app path (pushes a history entry unless `replace`). */
export function navigate(path, { replace: replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  moveFocus = !replaceEntry;
  render();
}

function setTitle(title) {
  document.title = title ? `${title} · hub` : "hub";
}

function render() {
  if (dispose) {
    dispose();
    dispose = null;
  }
  const path = location.pathname;
  const route = ROUTES.find((r) => r.pattern.test(path));
  if (!route) {
    showNotFound();
    return;
  }
  if (!route.public && !isSignedIn()) {
    const next = path + location.search;
    navigate(`/signin${next === "/" ? "" : `?next=${encodeURIComponent(next)}`}`, { replace: true });
    return;
  }
  const params = route.pattern.exec(path).slice(1).map(decodeURIComponent);
  let main;
  if (route.public) {
    socket.stop();
    dropFrame();
    main = h("main", { class: "public" });
    replace(document.body, main);
  } else {
    socket.start();
    main = ensureFrame(route.nav);
  }
  const message = signedOutReason;
  signedOutReason = null;
  dispose = route.page.mount(main, { params, socket, navigate, setTitle, message });
  window.scrollTo(0, 0);
  // After following a link, keyboard and screen-reader users go on from the new page's content.
  if (moveFocus && !route.public) main.focus({ preventScroll: true });
  moveFocus = false;
}

function showNotFound() {
  setTitle("Not found");
  const main = isSignedIn() ? ensureFrame(null) : h("main", { class: "public" });
  if (!isSignedIn()) replace(document.body, main);
  replace(
    main,
    h("section", { class: "card narrow" }, h("h1", null, "Page not found"), link("/", null, "Go to the fleet")),
  );
}

/** The header and the <main> pages render into (built once per sign-in). */
function ensureFrame(active) {
  if (!frame) frame = buildFrame();
  for (const a of frame.nav.querySelectorAll("a")) {
    if (a.dataset.nav === active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  replace(frame.main);
  return frame.main;
}

function buildFrame() {
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Main" },
    link("/", { dataset: { nav: "fleet" } }, "Fleet"),
    link("/firmware", { dataset: { nav: "firmware" } }, "Firmware"),
    link("/provisioning", { dataset: { nav: "provisioning" } }, "Provisioning"),
    link("/system", { dataset: { nav: "system" } }, "System"),
    link("/tokens", { dataset: { nav: "tokens" } }, "Tokens"),
  );
  const connection = h("span", { class: "connection", role: "status", "aria-live": "polite" });
  const user = h("span", { class: "user" });
  const theme = h(
    "select",
    { class: "theme-select", "aria-label": "Theme", onchange: (event) => setTheme(event.target.value) },
    THEMES.map(([key, label]) => h("option", { value: key }, label)),
  );
  theme.value = themeChoice();
  const signOutButton = h("button", { type: "button", class: "button subtle", onclick: doSignOut }, "Sign out");
  const skip = h("a", { class: "skip-link", href: "#main" }, "Skip to content");
  const header = h(
    "header",
    { class: "topbar" },
    h(
      "div",
      { class: "topbar-inner" },
      link("/", { class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "hub"),
      nav,
      h("div", { class: "topbar-end" }, connection, theme, user, signOutButton),
    ),
  );
  const main = h("main", { class: "content", id: "main", tabindex: "-1" });
  const health = healthBanner(socket);
  replace(document.body, skip, header, health.element, main);
  const unwatch = socket.onState((state) => {
    connection.className = `connection ${state}`;
    connection.textContent = { online: "Live", connecting: "Connecting…", offline: "Reconnecting…" }[state];
    connection.title = state === "online" ? "Receiving live updates" : "Live updates paused; reconnecting";
  });
  api("GET", "/api/auth/me")
    .then((me) => {
      user.textContent = me.username;
    })
    .catch((err) => {
      if (!isSignedOut(err)) user.textContent = "";
    });
  return {
    nav,
    main,
    dispose() {
      unwatch();
      health.dispose();
    },
  };
}

/** Forget the frame (signed out): the next signed-in page builds a new one. */
function dropFrame() {
  if (frame) frame.dispose();
  frame = null;
}

async function doSignOut() {
  socket.stop();
  await signOut();
  dropFrame();
  navigate("/signin", { replace: true });
}

onSignedOut((reason) => {
  socket.stop();
  dropFrame();
  signedOutReason = reason;
  const next = location.pathname.startsWith("/signin") ? "/" : location.pathname + location.search;
  navigate(`/signin${next === "/" ? "" : `?next=${encodeURIComponent(next)}`}`, { replace: true });
});

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const anchor = event.target.closest("a[href]");
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/static/")) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return; // "#main"
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search + url.hash);
});

window.addEventListener("popstate", render);
render();
