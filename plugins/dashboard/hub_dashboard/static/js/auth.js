/**
 * The signed-in session: tokens, their storage, refresh, sign-in and sign-out.
 *
 * Access tokens are short-lived (30 min by default) and kept in memory and in
 * sessionStorage (so a reload of the tab needs no new sign-in).  The refresh
 * token that renews them stays in sessionStorage, i.e. it is gone when the tab
 * closes, unless the user ticked "Keep me signed in": then it is kept in
 * localStorage, as Home Assistant does.  Nothing goes into cookies, so the
 * API cannot be driven by another site (no CSRF).
 *
 * A rejected refresh token counts as a failed sign-in on the hub (too many
 * ban the address), so it is tried once and the session dropped at the first
 * refusal; the app then shows the sign-in page.
 *
 * Refresh tokens rotate: each exchange returns the next one and spends the one
 * sent, and the hub ends the session if a spent one comes back.  Tabs that
 * keep the session in localStorage share one token, so a refresh runs under a
 * Web Lock across tabs and starts from the token stored last (another tab may
 * have rotated it meanwhile).
 */
import { ApiError, request } from "./http.js";

const SESSION_KEY = "hub.session";
const KEEP_KEY = "hub.refresh_token";
const EARLY_REFRESH = 60;

/** Thrown when an action needs a session and there is none (the app then goes to the sign-in page). */
export class SignedOut extends Error {
  constructor(message = "Signed out") {
    super(message);
    this.name = "SignedOut";
  }
}

let access = null; // {token, expiresAt} (expiresAt in browser-clock seconds)
let refreshToken = null;
let keep = false;
let refreshing = null;
const signedOutListeners = new Set();

function nowSeconds() {
  return Date.now() / 1000;
}

function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (saved && typeof saved.access_token === "string") {
      access = { token: saved.access_token, expiresAt: Number(saved.expires_at) || 0 };
    }
    refreshToken = (saved && saved.refresh_token) || localStorage.getItem(KEEP_KEY);
    keep = Boolean(localStorage.getItem(KEEP_KEY));
  } catch {
    access = null;
    refreshToken = null;
  }
}

function persist() {
  try {
    sessionStorage.setItem(
      SESSION_KEY,
      JSON.stringify({
        access_token: access && access.token,
        expires_at: access && access.expiresAt,
        refresh_token: keep ? null : refreshToken,
      }),
    );
    if (keep && refreshToken) localStorage.setItem(KEEP_KEY, refreshToken);
    else localStorage.removeItem(KEEP_KEY);
  } catch {
    // Storage disabled (private mode): the session lives in memory for this page only.
  }
}

function forget() {
  access = null;
  refreshToken = null;
  keep = false;
  try {
    sessionStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(KEEP_KEY);
  } catch {
    // nothing stored
  }
}

function dropSession(reason) {
  forget();
  for (const listener of signedOutListeners) listener(reason);
}

load();

/** True while there is a session to use (it may still turn out to be revoked). */
export function isSignedIn() {
  return Boolean(refreshToken || (access && access.expiresAt > nowSeconds()));
}

/** Call `listener(reason)` when the session ends without the user signing out (revoked, expired). */
export function onSignedOut(listener) {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

/** Use the tokens of a sign-in or onboarding answer. */
export function startSession(result, keepSignedIn) {
  access = { token: result.access_token, expiresAt: nowSeconds() + result.expires_in };
  refreshToken = result.refresh_token;
  keep = Boolean(keepSignedIn);
  persist();
}

/** Sign in with a username and password; ApiError on refusal (401, 429 throttled, 403 banned). */
export async function signIn(username, password, keepSignedIn) {
  startSession(await request("POST", "/api/auth/login", { body: { username, password } }), keepSignedIn);
}

/** End the session on the hub (its refresh and access tokens are revoked) and here. */
export async function signOut() {
  let token = null;
  try {
    token = await accessToken();
  } catch {
    // The session is already over on the hub (or the hub is unreachable).
  }
  forget();
  if (token) {
    try {
      await request("POST", "/api/auth/logout", { token });
    } catch {
      // Already invalid or hub unreachable: the tokens are forgotten here either way.
    }
  }
}

/** Forget `token` if it is the current access token (the API refused it), so the next call refreshes. */
export function invalidate(token) {
  if (access && access.token === token) access = null;
}

/** A valid access token, refreshed first if it expires within a minute; SignedOut if the session is over. */
export async function accessToken() {
  if (access && access.expiresAt - EARLY_REFRESH > nowSeconds()) return access.token;
  if (!refreshToken) {
    if (access) dropSession("Your session has expired. Please sign in again.");
    throw new SignedOut();
  }
  if (!refreshing) {
    refreshing = withRefreshLock(async () => {
      try {
        if (keep) refreshToken = storedKeptToken() || refreshToken;
        const result = await request("POST", "/api/auth/token", { body: { refresh_token: refreshToken } });
        access = { token: result.access_token, expiresAt: nowSeconds() + result.expires_in };
        if (result.refresh_token) refreshToken = result.refresh_token;
        persist();
        return access.token;
      } catch (err) {
        if (err instanceof ApiError && (err.status === 400 || err.status === 401)) {
          dropSession("Your session has ended. Please sign in again.");
          throw new SignedOut();
        }
        throw err;
      } finally {
        refreshing = null;
      }
    });
  }
  return refreshing;
}

function storedKeptToken() {
  try {
    return localStorage.getItem(KEEP_KEY);
  } catch {
    return null;
  }
}

/** Run `task` while no other tab of this hub refreshes (Web Locks); directly where they are missing. */
function withRefreshLock(task) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request("hub.refresh", task);
  return task();
}
