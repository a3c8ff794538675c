// The calls the compliance page makes (same origin, the staff session cookie), built on the one API client.
// No DOM access here.
import { createApi } from "../api.js";

/** @typedef {import("../api.js").Api} Api */

/** @param {string} value */
const segment = (value) => encodeURIComponent(value);

/**
 * @param {Api} [api] the client to call through (a test passes one with its own fetch)
 */
export function createComplianceApi(api = createApi()) {
  return {
    /** @param {string} username @param {string} password */
    login: (username, password) => api.post("/api/auth/login", { username, password }),
    logout: () => api.post("/api/auth/logout", {}),
    me: () => api.get("/api/auth/me"),
    /** Whether this browser is signed in, as a state (never a 401): `{signed_in, me?}`. */
    signInState: () => api.get("/api/auth/session"),
    /**
     * Propose my key (only the public half is ever passed here); it takes effect once a second
     * person approves. Resolves the proposal. @param {string} recipient
     */
    registerRecipient: (recipient) => api.put("/api/staff/me/recipient", { recipient }),
    /** Every compliance key proposal, newest first. */
    keyProposals: () => api.get("/api/compliance/keys"),
    /** @param {string} proposalId */
    approveKey: (proposalId) => api.post(`/api/compliance/keys/${segment(proposalId)}/approve`, {}),
    /** @param {string} proposalId */
    rejectKey: (proposalId) => api.post(`/api/compliance/keys/${segment(proposalId)}/reject`, {}),
    /** The signed recipient statement in force, unverified (statement.js checks it). */
    recipientStatement: () => api.get("/api/compliance/recipients"),
    /** @param {{state?: string, page?: number, perPage?: number}} [filter] */
    listCases: ({ state = "", page = 1, perPage = 20 } = {}) => {
      const search = new URLSearchParams({ page: String(page), per_page: String(perPage) });
      if (state) search.set("state", state);
      return api.get(`/api/cases?${search}`);
    },
    /** @param {string} caseId */
    readCase: (caseId) => api.get(`/api/cases/${segment(caseId)}`),
    /** @param {string} caseId */
    listRecords: (caseId) => api.get(`/api/cases/${segment(caseId)}/records`),
    /**
     * The manifest's exact text (parsed strictly by manifest.js): bytes decoded as strict UTF-8.
     * @param {string} caseId
     * @returns {Promise<string>}
     */
    manifest: async (caseId) => {
      const bytes = await api.get(`/api/cases/${segment(caseId)}/records/manifest`, { answer: "bytes" });
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    },
    /** Signed audit checkpoints above a size, as notes with cosignatures. @param {number} after */
    checkpoints: (after) => api.get(`/api/audit/checkpoints?after=${after}&limit=1`),
    /** The consistency proof between two tree sizes. @param {number} oldSize @param {number} newSize */
    consistency: (oldSize, newSize) => api.get(`/api/audit/consistency?old_size=${oldSize}&new_size=${newSize}`),
    /**
     * A sealed record's ciphertext; the server audits the download.
     * @param {string} caseId
     * @param {string} recordId
     * @returns {Promise<Uint8Array>}
     */
    download: (caseId, recordId) =>
      api.get(`/api/cases/${segment(caseId)}/records/${segment(recordId)}`, { answer: "bytes" }),
  };
}

/** @typedef {ReturnType<typeof createComplianceApi>} ComplianceApi */
