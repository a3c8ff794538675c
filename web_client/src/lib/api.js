// The HTTP API client: JSON in, JSON out; every failure becomes an ApiError with a stable code.
// No DOM here: it runs in the pages and under Node's test runner alike.

/** A failed call: `code` is the API's error code (or a client one: "network", "bad_response"). */
export class ApiError extends Error {
  constructor(code, message, { status = 0, field = null, requestId = null } = {}) {
    super(message || code);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.field = field;
    this.requestId = requestId;
  }

  /** The state named in a 409 message (`... is in state "scheduled" ...`), if any. */
  get state() {
    const match = /state "([a-z_]+)"/.exec(this.message);
    return match ? match[1] : null;
  }
}

/**
 * A client bound to one credential: `token` (a party's receipt or join link, sent as a Bearer
 * header) or none (staff: the HttpOnly session cookie goes with every same-origin request).
 */
export function createApi({ token = null, base = "", fetchImpl = globalThis.fetch } = {}) {
  async function request(method, path, { body, raw = false } = {}) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetchImpl(base + path, init);
    } catch (error) {
      throw new ApiError("network", String(error && error.message ? error.message : error));
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (!response.ok) {
      const known = parsed && typeof parsed === "object" && typeof parsed.error === "string";
      throw new ApiError(known ? parsed.error : `http_${response.status}`,
        known && typeof parsed.message === "string" ? parsed.message : `HTTP ${response.status}`,
        { status: response.status, field: known ? parsed.field ?? null : null,
          requestId: known ? parsed.request_id ?? response.headers.get("X-Request-Id") : null });
    }
    if (raw) return text;
    if (parsed === null && text) throw new ApiError("bad_response", "the server answered with something that is not JSON", { status: response.status });
    return parsed;
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

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
