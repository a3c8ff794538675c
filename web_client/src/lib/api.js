// The HTTP API client of every page: JSON in, JSON out; every failure becomes an ApiError with a stable code.
// No DOM here: it runs in the pages and under Node's test runner alike.

/**
 * @typedef {object} ApiErrorDetails
 * @property {number} [status] HTTP status; 0 when no answer came
 * @property {string | null} [field] the request field a 4xx names
 * @property {string | null} [state] the case, session or agreement state a 409 names
 * @property {string | null} [requestId] the server's id for an unexpected failure
 */

/** A failed call: `code` is the API's error code (or a client one: "network", "bad_response", "http_<status>"). */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {ApiErrorDetails} [details]
   */
  constructor(code, message, { status = 0, field = null, state = null, requestId = null } = {}) {
    super(message || code);
    this.name = "ApiError";
    /** @type {string} */
    this.code = code;
    /** @type {number} */
    this.status = status;
    /** @type {string | null} */
    this.field = field;
    /** @type {string | null} */
    this.state = state;
    /** @type {string | null} */
    this.requestId = requestId;
  }
}

/**
 * How to read a successful answer: parsed JSON (the default), the exact text, or the exact bytes.
 * @typedef {"json" | "text" | "bytes"} Answer
 */

/**
 * @typedef {object} RequestOptions
 * @property {unknown} [body] sent as JSON
 * @property {boolean} [raw] the answer's exact text (same as `answer: "text"`)
 * @property {Answer} [answer]
 */

/**
 * @typedef {object} Api
 * @property {string | null} token
 * @property {(method: string, path: string, options?: RequestOptions) => Promise<any>} request
 * @property {(path: string, options?: RequestOptions) => Promise<any>} get
 * @property {(path: string, body?: unknown) => Promise<any>} post
 * @property {(path: string, body?: unknown) => Promise<any>} put
 * @property {(path: string) => Promise<any>} del
 */

/** @param {unknown} value */
const text = (value) => (typeof value === "string" ? value : null);

/**
 * A client bound to one credential: `token` (a party's receipt or join link, sent as a Bearer
 * header) or none (staff: the HttpOnly session cookie goes with every same-origin request).
 * @param {{token?: string | null, base?: string, fetchImpl?: typeof fetch}} [options]
 * @returns {Api}
 */
export function createApi({ token = null, base = "", fetchImpl = (input, init) => globalThis.fetch(input, init) } = {}) {
  /**
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} [options]
   */
  async function request(method, path, { body, raw = false, answer = raw ? "text" : "json" } = {}) {
    /** @type {Record<string, string>} */
    const headers = { Accept: answer === "bytes" ? "application/octet-stream" : "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    /** @type {RequestInit} */
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetchImpl(base + path, init);
    } catch (error) {
      throw new ApiError("network", String(error instanceof Error ? error.message : error));
    }
    if (!response.ok) throw await failure(response);
    if (answer === "bytes") return new Uint8Array(await response.arrayBuffer());
    if (response.status === 204) return null;
    const content = await response.text();
    if (answer === "text") return content;
    if (!content) return null;
    try {
      return JSON.parse(content);
    } catch {
      throw new ApiError("bad_response", "the server answered with something that is not JSON", { status: response.status });
    }
  }

  return {
    token,
    request,
    get: (path, options) => request("GET", path, options),
    post: (path, body = {}) => request("POST", path, { body }),
    put: (path, body) => request("PUT", path, { body }),
    del: (path) => request("DELETE", path),
  };
}

/**
 * The ApiError for a 4xx or 5xx: the body's `{error, message, field, state, request_id}` when it is
 * the API's JSON, else a code made of the status.
 * @param {Response} response
 */
async function failure(response) {
  let parsed = null;
  try {
    parsed = JSON.parse(await response.text());
  } catch {
    parsed = null;
  }
  const status = response.status;
  if (!parsed || typeof parsed !== "object" || typeof parsed.error !== "string") {
    return new ApiError(`http_${status}`, `HTTP ${status}`, { status });
  }
  return new ApiError(parsed.error, text(parsed.message) ?? `HTTP ${status}`, {
    status,
    field: text(parsed.field),
    state: text(parsed.state),
    requestId: text(parsed.request_id) ?? response.headers.get("X-Request-Id"),
  });
}

/**
 * `?a=1&b=2` from an object, leaving out empty values.
 * @param {Record<string, unknown>} params
 */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const encoded = search.toString();
  return encoded ? `?${encoded}` : "";
}
