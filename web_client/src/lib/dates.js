// Dates and times in the reader's locale and time zone; inputs in local time sent with their offset.

/** @param {number} n @param {number} [width] */
const pad = (n, width = 2) => String(Math.trunc(Math.abs(n))).padStart(width, "0");

/** @param {unknown} value a Date, an ISO string or epoch milliseconds */
function asDate(value) {
  const date = value instanceof Date ? value : new Date(/** @type {string | number} */ (value));
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * "2026年3月1日周日 10:00" / "Sun, Mar 1, 2026, 10:00 AM"; with `zone`, the zone follows in
 * brackets ("… 10:00 (GMT+8)") so that every language puts it last; `short` for table cells ("2026/3/1 10:00").
 * @param {unknown} value
 * @param {string} lang
 * @param {{timeZone?: string, zone?: boolean, short?: boolean}} [options]
 */
export function formatDateTime(value, lang, { timeZone, zone = false, short = false } = {}) {
  const date = asDate(value);
  if (!date) return "";
  /** @type {Intl.DateTimeFormatOptions} */
  const options = short
    ? { year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone }
    : { year: "numeric", month: "short", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", timeZone };
  const text = new Intl.DateTimeFormat(lang, options).format(date);
  if (!zone) return text;
  const name = new Intl.DateTimeFormat(lang, { timeZoneName: "short", timeZone }).formatToParts(date)
    .find((part) => part.type === "timeZoneName")?.value;
  return name ? `${text} (${name})` : text;
}

/**
 * A calendar date ("2026-03-01", no time zone) as "2026年3月1日" / "Mar 1, 2026".
 * @param {unknown} isoDate
 * @param {string} lang
 */
export function formatDate(isoDate, lang) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(isoDate ?? ""));
  if (match) {
    const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
    return new Intl.DateTimeFormat(lang, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }).format(date);
  }
  const date = asDate(isoDate);
  return date ? new Intl.DateTimeFormat(lang, { year: "numeric", month: "short", day: "numeric" }).format(date) : "";
}

/** The offset of `date` in the local zone as "+08:00". @param {Date} date */
export function localOffset(date) {
  const minutes = -date.getTimezoneOffset();
  return `${minutes < 0 ? "-" : "+"}${pad(minutes / 60)}:${pad(minutes % 60)}`;
}

/**
 * A `<input type="datetime-local">` value ("2026-03-01T10:00") read in the local zone, as ISO 8601
 * with that zone's offset at that moment ("2026-03-01T10:00:00+08:00"). Null if it is not a valid time.
 * @param {unknown} value
 * @returns {string | null}
 */
export function localInputToIso(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(String(value ?? ""));
  if (!match) return null;
  const [year, month, day, hour, minute, second = "0"] = match.slice(1).map((part) => part ?? "0");
  const date = new Date(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  if (Number.isNaN(date.getTime()) || date.getFullYear() !== Number(year) || date.getMonth() !== Number(month) - 1
      || date.getDate() !== Number(day)) return null;
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}:${pad(date.getSeconds())}${localOffset(date)}`;
}

/** A Date as a `datetime-local` value in the local zone ("2026-03-01T10:00"). @param {unknown} value */
export function toLocalInput(value) {
  const date = asDate(value);
  if (!date) return "";
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A Date as a calendar date "YYYY-MM-DD" in the local zone. @param {unknown} value */
export function toLocalDate(value) {
  const date = asDate(value);
  if (!date) return "";
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * "2026-03-01" plus `months` calendar months, the day clamped to the month's end ("2026-01-31" + 1 -> "2026-02-28").
 * @param {string} isoDate
 * @param {number} months
 */
export function addMonths(isoDate, months) {
  const [year, month, day] = isoDate.split("-").map(Number);
  const first = new Date(Date.UTC(year, month - 1 + months, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  return `${pad(first.getUTCFullYear(), 4)}-${pad(first.getUTCMonth() + 1)}-${pad(Math.min(day, last))}`;
}
