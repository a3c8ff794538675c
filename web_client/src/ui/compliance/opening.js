// Opening records: verify against the signed audit log, decrypt, and show the results with every
// problem named; decrypted recordings become playable videos (blob URLs revoked when closed).
import { ManifestError, parseManifest } from "../../lib/compliance/manifest.js";
import { openRecords } from "../../lib/compliance/open.js";
import { People } from "../../lib/compliance/transcript.js";
import { errorMessage } from "../../lib/i18n.js";
import { $, fill, h } from "../dom.js";
import { renderCase } from "./cases.js";
import { api, state, videos } from "./context.js";
import { formatDuration, incompleteBadge, personById } from "./format.js";
import { readPin, storePin } from "./pin.js";
import { currentKeyring } from "./keys.js";
import { createReview, stopPlayer } from "./player.js";
import { agreementResults, chatSection, consentsSection, timelineSection } from "./records.js";
import { sessionExpired } from "./session.js";
import { problemParts, problemText } from "./text.js";

export function closeOpened() {
  stopPlayer();
  for (const { url, element } of videos.values()) {
    element.removeAttribute("src");
    element.load();
    URL.revokeObjectURL(url);
  }
  videos.clear();
  state.opened = null;
  renderOpened();
}

/** The checkpoint evidence for a manifest: the note of its checkpoint and the proof from this browser's pin. */
async function loadEvidence(manifest) {
  const size = manifest.objects[0]?.checkpoint.treeSize;
  if (!size) return { evidence: null, pin: null, witnessKeys: [], quorum: 0, origin: null };
  const history = await api.checkpoints(size - 1);
  const stored = readPin(history.origin);
  // The officer's own witness keys come first, then those this browser pinned, then the server's.
  const typed = $("witness-keys").value.split("\n").map((line) => line.trim()).filter(Boolean);
  const witnessKeys = typed.length ? typed : stored ? stored.witnessKeys : history.witness_keys;
  const typedQuorum = $("witness-quorum").value;
  const quorum = typed.length ? (typedQuorum === "" ? typed.length : Number(typedQuorum))
    : stored ? stored.quorum : history.witness_quorum;
  const found = history.checkpoints.find((c) => c.tree_size === size && c.note);
  if (!found) return { evidence: null, pin: stored?.head ?? null, witnessKeys, quorum, origin: history.origin };
  let consistency = null;
  if (stored && stored.head.treeSize <= size) {
    const answer = await api.consistency(stored.head.treeSize, size);
    consistency = { old_size: stored.head.treeSize, proof: answer.proof };
  }
  return { evidence: { note: found.note, consistency }, pin: stored?.head ?? null, witnessKeys, quorum,
    origin: history.origin };
}

export async function openScope(scope) {
  const ring = currentKeyring();
  if (!ring || !state.caseView || state.opened?.status === "working") return;
  closeOpened();
  const caseId = state.caseView.case_id;
  state.opened = { scope, status: "working", done: 0, total: 0, report: null, error: null };
  renderOpened();
  renderCase();
  $("opened").scrollIntoView({ block: "start" });
  try {
    const [text, listed] = await Promise.all([api.manifest(caseId), api.listRecords(caseId)]);
    state.records = listed.records;
    let manifest;
    try {
      manifest = parseManifest(text);
    } catch (error) {
      if (error instanceof ManifestError) throw Object.assign(error, { problem: "manifest_error" });
      throw error;
    }
    const pinning = await loadEvidence(manifest);
    const include = scope.kind === "session"
      ? (o) => o.sessionId === scope.sessionId
      : (o) => o.kind === "agreement";
    const report = await openRecords({
      manifest, caseId, include, keyring: ring, pinnedKeyId: $("audit-key-pin").value,
      evidence: pinning.evidence, pin: pinning.pin, witnessKeys: pinning.witnessKeys, quorum: pinning.quorum,
      recordIds: new Map(listed.records.map((r) => [r.key, r.record_id])),
      listedKeys: listed.records.map((r) => ({ key: r.key, kind: r.kind, sessionId: r.session_id })),
      download: (recordId) => api.download(caseId, recordId),
      onProgress: (done, total) => {
        if (state.opened?.scope !== scope) return;
        Object.assign(state.opened, { done, total });
        const progress = $("open-progress");
        if (progress) progress.textContent = state.t("open.working", { done, total });
      },
    });
    if (state.opened?.scope !== scope) return; // closed, or signed out, meanwhile
    if (report.acceptedNote && pinning.origin) {
      storePin(pinning.origin, report.acceptedNote, pinning.witnessKeys, pinning.quorum);
    }
    state.opened.report = report;
    state.opened.status = "done";
  } catch (error) {
    if (sessionExpired(error)) return;
    if (state.opened?.scope !== scope) return;
    state.opened.status = "failed";
    state.opened.error = error;
  }
  renderOpened();
  renderCase();
}

export function problemList(items, testid, itemTestid, render) {
  return h("ul", { class: "problem-list", testid }, items.map((item) => h("li", { testid: itemTestid,
    dataset: { code: item.code }, text: render(item) })));
}

export function problemItems(problems, testid, itemTestid) {
  const { t } = state;
  return h("ul", { class: "problem-list", testid }, problems.map((problem) => {
    const { subject, message } = problemParts(t, problem);
    return h("li", { testid: itemTestid, dataset: { code: problem.code } },
      subject ? h("span", { class: "problem-what", text: subject }) : null, h("span", { text: message }));
  }));
}

export function renderOpened() {
  const { t } = state;
  const opened = state.opened;
  reviewing = null;
  if (!opened || opened.status !== "done" || opened.scope.kind !== "session") stopPlayer();
  const section = $("opened");
  section.hidden = !opened;
  if (!opened) {
    fill($("opened-body"));
    return;
  }
  $("opened-title").textContent = opened.scope.kind === "session"
    ? t("open.scopeSession", { session: opened.scope.sessionId }) : t("open.scopeAgreements");
  section.dataset.scope = opened.scope.kind;
  if (opened.status === "working") {
    section.dataset.state = "working";
    fill($("opened-body"), h("div", { class: "banner banner-working", testid: "verification", dataset: { state: "working" } },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { id: "open-progress", role: "status",
        text: opened.total ? t("open.working", { done: opened.done, total: opened.total }) : t("open.starting") })));
    return;
  }
  if (opened.status === "failed") {
    section.dataset.state = "incomplete";
    const message = opened.error?.problem === "manifest_error"
      ? problemText(t, { code: "manifest_error", params: { message: opened.error.message } })
      : errorMessage(t, opened.error);
    fill($("opened-body"), h("div", { class: "banner banner-bad", testid: "verification", dataset: { state: "incomplete" },
      role: "alert" }, h("strong", { text: t("open.incompleteBadge") }), " ", t("open.failed", { message })));
    return;
  }
  const { report } = opened;
  section.dataset.state = report.complete ? "complete" : "incomplete";
  const banner = report.complete
    ? h("div", { class: "banner banner-ok", testid: "verification", dataset: { state: "complete" }, role: "status" },
      h("strong", { text: t("open.completeBadge") }), " ", t("open.complete", { verified: report.verified }))
    : h("div", { class: "banner banner-bad", testid: "verification", dataset: { state: "incomplete" }, role: "alert" },
      h("strong", { text: t("open.incompleteBadge") }), " ", t("open.incomplete", { count: report.problems.length }));
  fill($("opened-body"),
    banner,
    h("p", { class: "muted small", testid: "open-summary", text: t("open.summary", { listed: report.listed, verified: report.verified }) }),
    report.problems.length ? h("details", { class: "problems", open: true },
      h("summary", { text: t("open.problems", { count: report.problems.length }) }),
      problemItems(report.problems, "problems", "problem")) : null,
    report.warnings.length ? h("details", { class: "warnings", open: true },
      h("summary", { text: t("open.warnings", { count: report.warnings.length }) }),
      problemList(report.warnings, "warnings", "warning", (w) => t(`warning.${w.code}`, w.params))) : null,
    opened.scope.kind === "session" ? sessionResults(report, opened.scope.sessionId) : agreementResults(report));
  reviewing?.start();
}

/** @type {ReturnType<typeof createReview> | null} the review of the session being shown */
let reviewing = null;

export function sessionResults(report, sessionId) {
  const doc = report.transcripts.get(sessionId) ?? null;
  const people = doc ? new People(doc.participants) : null;
  reviewing = createReview(report, sessionId, doc, people);
  // The player and the transcript side by side: a line seeks the player, the player marks the line.
  const player = reviewing.section();
  const transcript = timelineSection(report, sessionId, doc, reviewing);
  return [
    h("div", { class: "review", testid: "review" }, player, h("div", { class: "review-transcript" }, transcript)),
    recordingsSection(report, people),
    chatSection(report, sessionId, people),
    consentsSection(report, people),
  ];
}

// --- recordings ----------------------------------------------------------------------------------

export function videoFor(recording) {
  const id = JSON.stringify(recording.group);
  if (videos.has(id)) return videos.get(id);
  // The verified segments of one part, in index order, are one playable WebM.
  const blob = new Blob(recording.chunks, { type: "video/webm" });
  recording.chunks = null; // the Blob holds the plaintext now
  const url = URL.createObjectURL(blob);
  const element = h("video", { class: "recording", controls: true, preload: "metadata", playsinline: true,
    testid: "recording-video", dataset: { participantId: recording.participantId, part: recording.part,
      complete: String(!recording.spoiled), segments: recording.segments.length } });
  const entry = { url, element, blob, duration: null, error: false };
  // The recorder writes a live (unknown-length) WebM: the browser learns its duration only after
  // seeking to the end once, so seek far ahead, then back to the start.
  let probing = false;
  element.addEventListener("loadedmetadata", () => {
    if (element.duration === Infinity || Number.isNaN(element.duration)) {
      probing = true;
      element.currentTime = Number.MAX_SAFE_INTEGER;
    } else {
      entry.duration = element.duration;
      element.dataset.duration = String(element.duration);
      renderDuration(entry);
    }
  });
  element.addEventListener("durationchange", () => {
    if (Number.isFinite(element.duration) && element.duration > 0) {
      entry.duration = element.duration;
      element.dataset.duration = String(element.duration);
      renderDuration(entry);
      if (probing) {
        probing = false;
        element.currentTime = 0;
      }
    }
  });
  element.addEventListener("error", () => {
    entry.error = true;
    element.dataset.error = String(element.error?.code ?? "unknown");
    renderDuration(entry);
  });
  element.src = url;
  entry.download = `${recording.sessionId}-${recording.participantId}-${String(recording.part).padStart(4, "0")}`
    + `${recording.spoiled ? ".INCOMPLETE" : ""}.webm`;
  entry.info = h("span", { class: "muted small" });
  videos.set(id, entry);
  return entry;
}

export function renderDuration(entry) {
  const { t } = state;
  if (entry.error) {
    entry.info.textContent = t("results.videoError");
    entry.info.className = "warn small";
  } else if (entry.duration !== null) {
    entry.info.textContent = t("results.duration", { duration: formatDuration(entry.duration) });
  } else {
    entry.info.textContent = "";
  }
}

export function recordingsSection(report, people) {
  const { t } = state;
  const recordings = [...report.recordings.values()].sort((a, b) =>
    (a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : a.part - b.part));
  const items = recordings.map((recording) => {
    const entry = videoFor(recording);
    renderDuration(entry);
    const own = report.problemsOf(recording.group);
    return h("figure", { class: ["recording-card", recording.spoiled && "is-incomplete"], testid: "recording",
      dataset: { participantId: recording.participantId, part: recording.part, complete: String(!recording.spoiled) } },
    h("figcaption", {},
      h("strong", { class: "caption-name", text: personById(recording.participantId, people) }),
      h("div", { class: "caption-line" },
        h("span", { class: "muted", text: `${t("results.part", { part: recording.part + 1 })} · `
          + t("results.segments", { count: recording.segments.length }) }),
        entry.info,
        recording.spoiled ? incompleteBadge() : null),
      h("a", { class: "link small", href: entry.url, download: entry.download, text: t("results.download") }),
      own.length ? problemItems(own, null, "recording-problem") : null));
  });
  return h("section", { class: "result-section", testid: "recordings" },
    h("h3", { class: "section-title", text: t("results.recordings") }),
    items.length ? h("div", { class: "recording-grid" }, items)
      : h("p", { class: "muted", text: t("results.noRecordings") }));
}

/** Wire the close button of the results (once, at start). */
export function wire() {
  $("opened-close").addEventListener("click", () => {
    closeOpened();
    renderCase();
  });
}
