// The live change stream (GET /api/events, server-sent events; docs/protocol.md, "Live changes to cases"):
// which case changed, so a page refetches what it shows. Read with fetch, not EventSource: a party's
// credential goes in the Authorization header, never in a URL. No DOM here: it runs under Node's test runner.

/**
 * Where the stream stands: "connecting" (first attempt), "live" (open), "reconnecting" (waiting to try
 * again), "offline" (the browser is offline, or the credential was refused: no more attempts).
 * @typedef {"connecting" | "live" | "reconnecting" | "offline"} LiveState
 */

/**
 * @typedef {object} ChangeEvent
 * @property {string} event "ready", "case_changed", "resync" or "access_revoked"
 * @property {Record<string, unknown>} data
 */

/**
 * @typedef {object} ChangeFeedOptions
 * @property {string | null} [token] a party's bearer token; staff send their session cookie
 * @property {string} [url]
 * @property {(event: ChangeEvent) => void} onEvent
 * @property {(state: LiveState) => void} [onState]
 * @property {typeof fetch} [fetchImpl]
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {() => boolean} [online] whether the browser believes it is online
 * @property {number} [quietMs] a stream silent this long is taken for dead (the server speaks every 15 s)
 */

/** Delays before each new attempt: 1 s doubling to 30 s. */
export const BACKOFF_MS = Object.freeze([1000, 2000, 4000, 8000, 16000, 30000]);

/**
 * Split server-sent event text into events; returns the events and the unfinished rest.
 * @param {string} buffer
 * @returns {{events: ChangeEvent[], rest: string}}
 */
export function parseEvents(buffer) {
  const normalized = buffer.replace(/\r\n?/g, "\n");
  const blocks = normalized.split("\n\n");
  const rest = blocks.pop() ?? "";
  /** @type {ChangeEvent[]} */
  const events = [];
  for (const block of blocks) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event === "message" && !data.length) continue;
    /** @type {Record<string, unknown>} */
    let parsed = {};
    try {
      const value = JSON.parse(data.join("\n") || "{}");
      if (value && typeof value === "object" && !Array.isArray(value)) parsed = value;
    } catch {
      continue; // not ours
    }
    events.push({ event, data: parsed });
  }
  return { events, rest };
}

/**
 * Open the change stream and keep it open: reconnect with backoff, report the state, hand each event on.
 * @param {ChangeFeedOptions} options
 * @returns {{close: () => void, state: () => LiveState}}
 */
export function openChangeFeed({
  token = null, url = "/api/events", onEvent, onState = () => {},
  fetchImpl = (input, init) => globalThis.fetch(input, init),
  sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  online = () => globalThis.navigator?.onLine ?? true,
  quietMs = 45000,
}) {
  /** @type {LiveState} */
  let state = "connecting";
  let closed = false;
  let opened = false; // the last attempt got as far as "ready"
  /** @type {AbortController | null} */
  let controller = null;

  /** @param {LiveState} next */
  const report = (next) => {
    if (next === state) return;
    state = next;
    onState(next);
  };

  /** @returns {Promise<"again" | "stop">} */
  async function once() {
    controller = new AbortController();
    const abort = controller;
    /** @type {Record<string, string>} */
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetchImpl(url, { headers, credentials: "same-origin", cache: "no-store", signal: abort.signal });
    } catch {
      return "again";
    }
    if (response.status === 401 || response.status === 403) return "stop";
    if (!response.ok || !response.body) return "again";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    /** @type {ReturnType<typeof setTimeout> | null} */
    let watchdog = null;
    const arm = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), quietMs);
    };
    arm();
    try {
      while (!closed) {
        const { value, done } = await reader.read();
        if (done) return "again";
        arm();
        buffer += decoder.decode(value, { stream: true });
        const parsed = parseEvents(buffer);
        buffer = parsed.rest;
        for (const event of parsed.events) {
          if (event.event === "ready") {
            opened = true;
            report("live");
          }
          if (event.event === "access_revoked") {
            onEvent(event);
            return "stop";
          }
          onEvent(event);
        }
      }
      return "stop";
    } catch {
      return "again";
    } finally {
      if (watchdog) clearTimeout(watchdog);
    }
  }

  async function run() {
    let failures = 0;
    while (!closed) {
      const outcome = await once();
      if (closed) return;
      if (outcome === "stop") {
        report("offline");
        return;
      }
      report(online() ? "reconnecting" : "offline");
      if (opened) failures = 0; // a stream that had opened starts the backoff over
      opened = false;
      await sleep(BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]);
      failures += 1;
    }
  }

  onState(state);
  run();
  return {
    close: () => {
      closed = true;
      controller?.abort();
    },
    state: () => state,
  };
}
