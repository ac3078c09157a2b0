/**
 * The WebSocket connection to the hub (`/api/websocket`, Home Assistant's protocol), shared by all pages.
 *
 * Pages call {@link HubSocket#subscribe} for the events they show and
 * {@link HubSocket#onReady} to (re)load their state.  The connection is
 * re-established with exponential backoff (1 s doubling to 30 s, with jitter)
 * whenever it drops — the hub disconnects clients that fall behind, restarts,
 * networks fail — and every subscription is renewed.  Events missed while
 * disconnected are not replayed, so after each (re)connect the ready callbacks
 * run and pages fetch the current state again.  A ping every 30 s detects a
 * connection that died silently.
 */
import { accessToken, invalidate, SignedOut } from "./auth.js";
import { observeServerTime } from "./format.js";

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;
const PING_EVERY = 30000;
const PONG_TIMEOUT = 10000;

export class HubSocket {
  constructor(url = socketUrl()) {
    this.url = url;
    this.ws = null;
    this.state = "connecting"; // connecting | online | offline
    this.nextId = 1;
    this.subscriptions = new Set();
    this.bySubscribeId = new Map();
    this.pending = new Map();
    this.stateListeners = new Set();
    this.readyListeners = new Set();
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = true;
    this.onOnline = () => this.reconnectNow();
  }

  /** Connect (and keep reconnecting until {@link stop}). */
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  /** Close for good (sign-out). */
  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setState("offline");
  }

  /**
   * Receive events of `eventType` (optionally of one node) until the returned function is called.
   * @param {string} eventType
   * @param {{nodeId?: string}} filter
   * @param {(event: {event_type: string, data: any, time_fired: number}) => void} handler
   */
  subscribe(eventType, filter, handler) {
    const sub = { eventType, nodeId: filter && filter.nodeId, handler, id: null };
    this.subscriptions.add(sub);
    if (this.state === "online") this.sendSubscribe(sub);
    return () => {
      this.subscriptions.delete(sub);
      if (sub.id !== null) {
        this.bySubscribeId.delete(sub.id);
        if (this.state === "online") this.call("unsubscribe_events", { subscription: sub.id }).catch(() => {});
      }
    };
  }

  /** Call `listener()` after every successful (re)connect, once subscriptions are renewed; now if online. */
  onReady(listener) {
    this.readyListeners.add(listener);
    if (this.state === "online") listener();
    return () => this.readyListeners.delete(listener);
  }

  /** Call `listener(state)` whenever the connection state changes. */
  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  /** Send a command; resolves with its result, rejects with its error or when the connection drops. */
  call(type, data = {}) {
    if (this.state !== "online") return Promise.reject(new Error("not connected to the hub"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...data, id, type }));
    });
  }

  // --- connection ----------------------------------------------------------------------
  connect() {
    if (this.stopped) return;
    this.setState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.nextId = 1;
    ws.onmessage = (msg) => this.receive(ws, msg.data);
    ws.onclose = () => {
      if (this.ws === ws) this.dropped();
    };
  }

  reconnectNow() {
    if (this.stopped || this.state === "online") return;
    clearTimeout(this.retryTimer);
    this.teardown();
    this.connect();
  }

  dropped() {
    this.teardown();
    if (this.stopped) return;
    this.setState("offline");
    const delay = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  teardown() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close();
    }
    for (const { reject } of this.pending.values()) reject(new Error("connection to the hub lost"));
    this.pending.clear();
    this.bySubscribeId.clear();
    for (const sub of this.subscriptions) sub.id = null;
  }

  async authenticate(ws) {
    let token;
    try {
      token = await accessToken();
    } catch (err) {
      if (err instanceof SignedOut) {
        this.stop();
        return;
      }
      this.dropped(); // hub unreachable while refreshing: try again later
      return;
    }
    if (this.ws === ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "auth", access_token: token }));
      this.token = token;
    }
  }

  receive(ws, raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    switch (msg.type) {
      case "event": {
        const sub = this.bySubscribeId.get(msg.id);
        if (sub) {
          observeServerTime(msg.event.time_fired);
          sub.handler(msg.event);
        }
        break;
      }
      case "result": {
        const waiter = this.pending.get(msg.id);
        if (waiter) {
          this.pending.delete(msg.id);
          if (msg.success) waiter.resolve(msg.result);
          else waiter.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
        }
        break;
      }
      case "pong":
        clearTimeout(this.pongTimer);
        break;
      case "auth_required":
        this.authenticate(ws);
        break;
      case "auth_ok":
        this.attempt = 0;
        this.setState("online");
        for (const sub of this.subscriptions) this.sendSubscribe(sub);
        this.pingTimer = setInterval(() => this.ping(), PING_EVERY);
        for (const listener of this.readyListeners) listener();
        break;
      case "auth_invalid":
        // Most likely an access token the hub forgot (it restarted): the next attempt refreshes it.
        invalidate(this.token);
        break;
      default:
        break;
    }
  }

  sendSubscribe(sub) {
    const id = this.nextId++;
    sub.id = id;
    this.bySubscribeId.set(id, sub);
    const message = { id, type: "subscribe_events", event_type: sub.eventType };
    if (sub.nodeId) message.node_id = sub.nodeId;
    this.ws.send(JSON.stringify(message));
  }

  ping() {
    if (this.state !== "online") return;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, type: "ping" }));
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.dropped(), PONG_TIMEOUT);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/websocket`;
}
