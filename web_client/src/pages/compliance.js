// The compliance page: sign in, make or register an age key, list cases and their sealed records,
// and open them in this page (verify against the signed audit log, decrypt, play, read).
// The areas live in src/ui/compliance/: session, keys (the only holder of the secret key), cases,
// opening (results and recordings) and records (timeline, chat, consents, agreements).
import * as cases from "../ui/compliance/cases.js";
import { state } from "../ui/compliance/context.js";
import * as keys from "../ui/compliance/keys.js";
import * as opening from "../ui/compliance/opening.js";
import * as session from "../ui/compliance/session.js";
import { CATALOGS } from "../ui/compliance/text.js";
import { startPage } from "../ui/page.js";

function renderAll() {
  session.renderWho();
  keys.renderKeys();
  keys.renderIdentity();
  cases.renderFilter();
  cases.renderCases();
  cases.renderCase();
  opening.renderOpened();
}

const page = startPage({ title: "app.title", catalogs: CATALOGS, render: (t) => {
  state.t = t;
  renderAll();
} });
state.t = page.t;

session.wire(renderAll);
keys.wire();
cases.wire();
opening.wire();
session.start();
