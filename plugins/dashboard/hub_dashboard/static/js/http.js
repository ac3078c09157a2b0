/**
 * One request to the hub's REST API, with its JSON error shape turned into an {@link ApiError}.
 * Authentication (which token, refreshing it) is the business of `auth.js` and `api.js`.
 */
import { observeServerTime } from "./format.js";

/** An error answer of the API (`{"error": {"code", "message"}}`), or `network_error` (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    /** Seconds to wait (429 throttling, 403 bans), from the Retry-After header. */
    this.retryAfter = retryAfter;
  }
}

/**
 * @param {string} method
 * @param {string} path e.g. `/api/nodes`
 * @param {{body?: any, token?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<any>} the parsed JSON body (null for 204)
 */
export async function request(method, path, { body, token, signal } = {}) {
  const headers = { Accept: "application/json" };
  const form = body instanceof FormData; // a file upload: the browser sets the multipart boundary
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the hub. Is it running?");
  }
  const date = response.headers.get("Date");
  if (date) observeServerTime(Date.parse(date) / 1000, 1.5);
  if (response.status === 204) return null;
  const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
  const data = isJson ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const error = data && data.error;
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(
      response.status,
      (error && error.code) || `http_${response.status}`,
      (error && error.message) || response.statusText || `HTTP ${response.status}`,
      retryAfter,
    );
  }
  return data;
}
