// What the compliance page's areas share: the API, the page's state and the decrypted recordings.
// The officer's secret key is not here: it lives only in keys.js.
import { createComplianceApi } from "../../lib/compliance/api.js";

/** @typedef {import("../../lib/i18n.js").Translator} Translator */

export const STATES = ["submitted", "accepted", "scheduled", "rejected", "closed"];
export const PER_PAGE = 20;

export const api = createComplianceApi();

export const state = {
  /** @type {Translator} set by the entry before anything renders */
  t: /** @type {any} */ (null),
  /** @type {any} */ me: null,
  filter: "",
  page: 1,
  /** @type {any} */ list: null,
  /** @type {unknown} */ listError: null,
  /** @type {any} */ caseView: null,
  /** @type {any[] | null} */ records: null,
  /** @type {any} {scope, status: working|done|failed, done, total, report, error} */ opened: null,
  /** @type {any} {tone, key, params} or {tone, text} */ keyStatus: null,
  /** @type {any} {tone, key, params} */ identityStatus: null,
};

/**
 * Decrypted recordings: blob URLs and their video elements, kept across re-renders (language switch).
 * @type {Map<string, {url: string, element: HTMLVideoElement, blob: Blob, duration: number | null, error: boolean,
 *   download?: string, info?: HTMLElement}>}
 */
export const videos = new Map();
