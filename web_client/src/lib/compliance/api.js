// The server's HTTP API as the compliance page uses it (same origin, cookie session). No DOM access here.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class ComplianceApi {
  constructor(fetchImpl = (...args) => fetch(...args), base = "") {
    this.fetch = fetchImpl;
    this.base = base;
  }

  async request(method, path, { json, raw = false } = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: raw ? "application/octet-stream" : "application/json" } };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await this.fetch(this.base + path, init);
    } catch (error) {
      throw new ApiError(0, "network", String(error?.message ?? error));
    }
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      throw new ApiError(response.status, body?.error ?? `http_${response.status}`, body?.message ?? response.statusText);
    }
    if (raw) return new Uint8Array(await response.arrayBuffer());
    if (response.status === 204) return null;
    return response.json();
  }

  login(username, password) {
    return this.request("POST", "/api/auth/login", { json: { username, password } });
  }

  logout() {
    return this.request("POST", "/api/auth/logout");
  }

  me() {
    return this.request("GET", "/api/auth/me");
  }

  registerRecipient(recipient) {
    return this.request("PUT", "/api/staff/me/recipient", { json: { recipient } });
  }

  listCases({ state = "", page = 1, perPage = 20 } = {}) {
    const query = new URLSearchParams({ page: String(page), per_page: String(perPage) });
    if (state) query.set("state", state);
    return this.request("GET", `/api/cases?${query}`);
  }

  readCase(caseId) {
    return this.request("GET", `/api/cases/${encodeURIComponent(caseId)}`);
  }

  listRecords(caseId) {
    return this.request("GET", `/api/cases/${encodeURIComponent(caseId)}/records`);
  }

  /** The manifest's exact text (parsed strictly by manifest.js, not by response.json()). */
  async manifest(caseId) {
    const bytes = await this.request("GET", `/api/cases/${encodeURIComponent(caseId)}/records/manifest`, { raw: true });
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }

  /** A sealed record's ciphertext; the server audits the download. */
  download(caseId, recordId) {
    return this.request("GET", `/api/cases/${encodeURIComponent(caseId)}/records/${encodeURIComponent(recordId)}`,
      { raw: true });
  }
}
