/**
 * Authenticated calls to the REST API: the bearer token is added, and a 401
 * (an access token the hub no longer knows, e.g. after a restart) is answered
 * by one refresh and one retry.
 */
import { accessToken, invalidate, SignedOut } from "./auth.js";
import { ApiError, request } from "./http.js";

export { ApiError, SignedOut };

/**
 * @param {string} method
 * @param {string} path
 * @param {{body?: any, signal?: AbortSignal}} [options]
 */
export async function api(method, path, options = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const token = await accessToken();
    try {
      return await request(method, path, { ...options, token });
    } catch (err) {
      if (attempt === 0 && err instanceof ApiError && err.status === 401) {
        invalidate(token);
        continue;
      }
      throw err;
    }
  }
}

/** A message for people from any error a page may meet. */
export function errorMessage(err) {
  if (err instanceof ApiError) {
    if (err.retryAfter && (err.status === 429 || err.status === 403)) {
      return `${err.message} (try again in ${Math.ceil(err.retryAfter)} s)`;
    }
    return err.message;
  }
  return err && err.message ? err.message : String(err);
}

/** True for errors a page should not show (the session ended: the app is on its way to sign-in). */
export function isSignedOut(err) {
  return err instanceof SignedOut;
}
