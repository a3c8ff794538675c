// Staff arrive with `?session=` and their session cookie; without one they sign in here first.
import { ApiError, createApi } from "../../lib/api.js";
import { $ } from "../dom.js";
import { connect } from "./connection.js";
import { startPrejoin } from "./lobby.js";
import { renderAll } from "./view.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

const api = createApi();

/**
 * Whether the staff cookie is good: "ok", "signin" (not signed in), "network" or "error".
 * @param {RoomPageState} _state
 * @returns {Promise<"ok" | "signin" | "network" | "error">}
 */
export async function whoAmI(_state) {
  try {
    // Not being signed in is a state: /api/auth/session answers 200 either way (no 401 logged).
    const session = await api.get("/api/auth/session");
    return session.signed_in ? "ok" : "signin";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return "signin";
    return error instanceof ApiError && error.code === "network" ? "network" : "error";
  }
}

/** @param {RoomPageState} state */
export function showSignIn(state) {
  state.phase = "signin";
  renderAll(state);
  $("signin-username").focus();
}

/**
 * The sign-in form: on success, on to the pre-join check and the socket.
 * @param {RoomPageState} state
 * @param {SubmitEvent} event
 */
export async function submitSignIn(state, event) {
  event.preventDefault();
  const username = $("signin-username").value.trim();
  const password = $("signin-password").value;
  const error = $("signin-error");
  const submit = $("signin-submit");
  /** @param {string} key */
  const show = (key) => {
    error.textContent = state.t(key);
    error.hidden = false;
  };
  error.hidden = true;
  if (!username || !password) {
    show("signin.missing");
    return;
  }
  submit.disabled = true;
  submit.textContent = state.t("signin.submitting");
  try {
    await api.post("/api/auth/login", { username, password });
    $("signin-password").value = "";
    startPrejoin(state);
    connect(state);
  } catch (failure) {
    const { code, status } = failure instanceof ApiError ? failure : { code: "unknown", status: 0 };
    if (code === "network") show("signin.error.network");
    else if (status === 429 || code === "rate_limited") show("signin.error.rate_limited");
    else if (status === 401 || status === 422 || code === "bad_credentials") show("signin.error.bad_credentials");
    else show("signin.error.other");
  } finally {
    submit.disabled = false;
    submit.textContent = state.t("signin.submit");
  }
}
