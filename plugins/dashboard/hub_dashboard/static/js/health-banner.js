/**
 * The banner across the top of every signed-in page while the hub is degraded: its database cannot be
 * reached, or refuses writes.  The hub then stores and acknowledges nothing (devices keep their messages
 * at the broker until it recovers), which an operator must see at once, whatever page is open.
 *
 * Driven by the live channel, like everything else: `get_health` after every (re)connect, then the
 * `health_changed` events the hub fires when its `/api/health` answer changes.
 */
import { h, replace } from "./dom.js";

const WHY = {
  database: { unavailable: "the database cannot be reached" },
  storage: { failing: "writing to the database fails (a full disk?)" },
};

/** What is wrong, in words, from `/api/health`'s `checks`. */
function reasons(checks) {
  const found = [];
  for (const [name, value] of Object.entries(checks || {})) {
    const text = WHY[name] && WHY[name][value];
    if (text) found.push(text);
  }
  return found.length ? found.join("; ") : "a health check fails";
}

/**
 * The banner element and a `dispose` that stops following the hub's health.
 * @param {import("./socket.js").HubSocket} socket
 */
export function healthBanner(socket) {
  const banner = h("div", { class: "health-banner", role: "alert", hidden: true, dataset: { health: "ok" } });

  function show(answer) {
    const degraded = answer && answer.status === "degraded";
    banner.dataset.health = degraded ? "degraded" : "ok";
    banner.hidden = !degraded;
    if (degraded) {
      replace(
        banner,
        h("strong", null, "Hub degraded: "),
        `${reasons(answer.checks)}. Nothing is stored or acknowledged until it recovers; devices' messages wait at the broker.`,
      );
    } else {
      replace(banner);
    }
  }

  const unsubscribe = socket.subscribe("health_changed", null, (event) => show(event.data));
  const unready = socket.onReady(() => {
    socket.call("get_health").then(show, () => {}); // a dropped connection asks again on the next ready
  });
  return {
    element: banner,
    dispose() {
      unsubscribe();
      unready();
    },
  };
}
