// Times of the room: message times as the server sends them, and elapsed time as the header shows it.

/**
 * "mm:ss" or "h:mm:ss".
 * @param {number} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

/**
 * A message time (ISO string, or unix seconds/milliseconds) as a Date, or null.
 * @param {unknown} value
 * @returns {Date | null}
 */
export function parseTime(value) {
  if (typeof value === "number" && Number.isFinite(value)) {
    return new Date(value < 1e12 ? value * 1000 : value);
  }
  if (typeof value === "string" && value) {
    const parsed = Date.parse(value);
    if (!Number.isNaN(parsed)) return new Date(parsed);
  }
  return null;
}

/**
 * Where `now` stands against a session scheduled at `start` for `durationMinutes`: before it (and how
 * long until it starts, rounded up to the minute), during it (how long since it started), or after it.
 * @param {Date} start
 * @param {number | null} durationMinutes
 * @param {number} now milliseconds since the epoch
 * @returns {{phase: "before" | "during" | "after", days: number, hours: number, minutes: number, totalMinutes: number}}
 */
export function untilStart(start, durationMinutes, now) {
  const delta = start.getTime() - now;
  const end = start.getTime() + (durationMinutes ?? 0) * 60000;
  /** @type {"before" | "during" | "after"} */
  const phase = delta > 0 ? "before" : durationMinutes && now >= end ? "after" : "during";
  const totalMinutes = phase === "before" ? Math.ceil(delta / 60000) : phase === "during" ? Math.floor(-delta / 60000) : 0;
  return {
    phase, totalMinutes, days: Math.floor(totalMinutes / 1440), hours: Math.floor((totalMinutes % 1440) / 60), minutes: totalMinutes % 60,
  };
}

/**
 * Calendar days from `now`'s local date to `start`'s local date (0 today, 1 tomorrow, -1 yesterday).
 * @param {Date} start
 * @param {Date} now
 */
export function calendarDaysBetween(now, start) {
  const day = (/** @type {Date} */ d) => Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
  return Math.round((day(start) - day(now)) / 86400000);
}
