// The staff case desk: sign in, then what the role does (cases, review, schedule, agreement, staff).
import { createApi } from "../lib/api.js";
import { $, busy, fill, h } from "../ui/dom.js";
import { Drafts } from "../ui/drafts.js";
import { caseDetail } from "../ui/desk/detail.js";
import { caseList } from "../ui/desk/list.js";
import { feedbackSummary } from "../ui/desk/feedback.js";
import { accountView, staffAdmin } from "../ui/desk/staff.js";
import en from "../lib/i18n/desk.en.js";
import zhCN from "../lib/i18n/desk.zh-CN.js";
import { liveConnection } from "../ui/live.js";
import { startPage } from "../ui/page.js";

const api = createApi();
const ctx = {
  api,
  me: null,
  drafts: new Drafts(),
  cache: new Map(), // per view: what it loaded (kept across language redraws)
  navigate: (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};
const page = startPage({ title: "desk.title", catalogs: { en, "zh-CN": zhCN }, render: () => draw() });
ctx.page = page;

const HOME = {
  case_officer: "#/cases", mediator: "#/cases", bank_representative: "#/cases", compliance_officer: "#/cases",
  administrator: "#/staff",
};

/** The current route: {view, params}. */
function parseRoute() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "case" && /^cas_[0-9a-f]{32}$/.test(parts[1] ?? "")) return { view: "case", caseId: parts[1], params };
  if (["cases", "feedback", "staff", "account"].includes(parts[0])) return { view: parts[0], params };
  return { view: null, params };
}

function allowed(view, role) {
  if (view === "cases" || view === "case") return ["case_officer", "mediator", "bank_representative", "compliance_officer"].includes(role);
  if (view === "feedback") return role === "case_officer";
  if (view === "staff") return role === "administrator";
  if (view === "account") return Boolean(role);
  return false;
}

let current = null; // {route, draw()} of the view on screen
let currentRoute = null;

/** @type {{badge: HTMLElement, close: () => void} | null} */
let live = null;
let deferred = null; // a refetch waiting for the user to leave the field they are typing in

function typing() {
  const active = document.activeElement;
  return Boolean(active && $("desk-root").contains(active) && active.matches("input, textarea, select, [contenteditable]"));
}

/** A change the server announced: the list, or the case on screen if it is the one that changed, is fetched again. */
async function refetch(event) {
  if (event.event === "access_revoked") {
    // The session ended (signed out elsewhere, disabled): ask who we are, which shows the sign-in.
    live?.close();
    live = null;
    await whoami();
    return;
  }
  if (!current || !currentRoute) return;
  const { view, caseId } = currentRoute;
  if (view !== "cases" && view !== "case") return;
  if (event.event === "case_changed" && view === "case" && event.data.case_id !== caseId) return;
  if (typing()) {
    deferred = event;
    return;
  }
  await current.load();
}

$("desk-root").addEventListener("focusout", () => {
  setTimeout(() => {
    if (deferred && !typing()) {
      const event = deferred;
      deferred = null;
      refetch(event);
    }
  }, 0);
});

function followChanges() {
  if (ctx.me && ["case_officer", "mediator", "bank_representative", "compliance_officer"].includes(ctx.me.role)) {
    if (!live) live = liveConnection(page, { refetch });
  } else {
    live?.close();
    live = null;
  }
}

function drawNav() {
  const { t } = page;
  const nav = $("desk-nav");
  const who = $("who");
  if (!ctx.me) {
    fill(nav, h("a", { href: page.href("/"), text: t("nav.home") }));
    who.hidden = true;
    return;
  }
  const role = ctx.me.role;
  const route = parseRoute();
  const link = (hash, key, testid) => h("a", { href: hash, text: t(key), testid,
    "aria-current": route.view === hash.slice(2) || (hash === "#/cases" && route.view === "case") ? "page" : null });
  const links = [];
  if (allowed("cases", role)) links.push(link("#/cases", ["case_officer", "compliance_officer"].includes(role) ? "nav.cases" : "nav.myCases", "nav-cases"));
  if (role === "case_officer") links.push(link("#/feedback", "nav.feedback", "nav-feedback"));
  if (role === "administrator") links.push(link("#/staff", "nav.staffAdmin", "nav-staff"));
  if (role === "compliance_officer" || role === "administrator") {
    links.push(h("a", { href: page.href("/compliance"), testid: "nav-compliance", text: t("nav.compliance") }));
  }
  links.push(link("#/account", "nav.account", "nav-account"));
  fill(nav, links);
  const signOut = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "signout", text: t("signin.signOut") });
  signOut.addEventListener("click", () => busy(signOut, async () => {
    try {
      await api.post("/api/auth/logout", {});
    } catch (error) {
      if (error.status !== 401) page.fail(error);
    }
    ctx.me = null;
    followChanges();
    ctx.cache.clear();
    ctx.drafts = new Drafts();
    history.replaceState(null, "", location.pathname + location.search);
    draw();
  }));
  fill(who, live?.badge, h("span", { class: "who-name", testid: "who-name", text: ctx.me.user?.display_name ?? "" }),
    h("span", { class: "who-role", testid: "who-role", dataset: { role }, text: t(`role.${role}`) }), signOut);
  who.hidden = false;
}

let signinError = null; // {key} or {error}: redrawn in the chosen language

function drawSigninError() {
  const node = $("signin-error");
  node.hidden = !signinError;
  node.textContent = !signinError ? "" : signinError.key ? page.t(signinError.key) : page.error(signinError.error);
}

function draw() {
  drawNav();
  drawSigninError();
  $("signin").hidden = Boolean(ctx.me);
  $("desk-root").hidden = !ctx.me;
  if (ctx.me && current) current.draw();
}

async function route() {
  if (!ctx.me) return draw();
  const target = parseRoute();
  if (!target.view || !allowed(target.view, ctx.me.role)) {
    history.replaceState(null, "", `${location.pathname}${location.search}${HOME[ctx.me.role] ?? "#/cases"}`);
    return route();
  }
  // Each view draws into its own container: a view left while it was still loading draws nowhere.
  const container = h("div", { class: "view" });
  $("desk-root").replaceChildren(container);
  const view = target.view === "cases" ? caseList : target.view === "case" ? caseDetail
    : target.view === "feedback" ? feedbackSummary : target.view === "account" ? accountView : staffAdmin;
  current = view(ctx, container, target);
  currentRoute = target;
  drawNav();
  await current.load();
}

async function whoami() {
  try {
    // Not being signed in is a state: /api/auth/session answers 200 either way (no 401 logged).
    const session = await api.get("/api/auth/session");
    ctx.me = session.signed_in && session.me?.kind === "staff" ? session.me : null;
  } catch (error) {
    ctx.me = null;
    if (error.status !== 401) page.fail(error);
  }
  followChanges();
  draw();
  if (ctx.me) await route();
  else $("signin-username").focus();
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const username = $("signin-username").value.trim();
  const password = $("signin-password").value;
  if (!username || !password) {
    signinError = { key: "signin.missing" };
    drawSigninError();
    return;
  }
  busy($("signin-submit"), async () => {
    try {
      await api.post("/api/auth/login", { username, password });
    } catch (error) {
      signinError = { error };
      drawSigninError();
      return;
    }
    signinError = null;
    drawSigninError();
    $("signin-password").value = "";
    await whoami();
  });
});

window.addEventListener("hashchange", () => route());
whoami();
