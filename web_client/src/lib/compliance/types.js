// Spec: docs/records.md (the problem codes both verifiers report).
// Types the verifier's modules share, as JSDoc for tsc. No code and no DOM access here.

/**
 * @typedef {object} Problem What a check found wrong: a code of docs/records.md and its details.
 * @property {string} code
 * @property {Record<string, unknown>} params
 */

export {};
