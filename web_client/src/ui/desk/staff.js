// Staff accounts, for administrators: the list (paged here; the API returns it whole) and a new account.
// An account for a role that reads cases waits for a second administrator (never its creator) to approve it;
// disabling it refuses it.
import { busy, fill, h } from "../dom.js";
import { pager } from "./list.js";

const ROLES = ["case_officer", "mediator", "bank_representative", "compliance_officer", "administrator"];
const USERNAME = /^[a-z][a-z0-9._-]{2,63}$/;
const PER_PAGE = 10;

export function staffAdmin(ctx, root) {
  const { api, page, drafts } = ctx;
  let staff = null;
  let error = null;
  let pageNumber = 1;
  let formErrors = {};
  let formError = null;
  let confirmingUser = null; // disabling asks once more

  function validate(values) {
    const errors = {};
    if (!USERNAME.test(values.username)) errors.username = "username";
    if (!values.display_name) errors.display_name = "required";
    else if (values.display_name.length > 120) errors.display_name = "tooLong";
    if (values.password.length < 12) errors.password = "password";
    return errors;
  }

  function draw() {
    const { t } = page;
    const field = (name, label, input, hint) => h("div", { class: ["field", formErrors[name] && "has-error"] },
      h("label", { for: input.id, text: t(label) }), input,
      hint ? h("p", { class: "hint", text: t(hint) }) : null,
      formErrors[name] ? h("p", { class: "field-error", testid: `error-staff-${name}`,
        text: t(`field.${formErrors[name]}`, { field: t(label), max: 120 }) }) : null);
    const username = drafts.input("staffForm.username", { id: "staff-username", testid: "staff-username", autocomplete: "off", spellcheck: "false", maxlength: "64" });
    const displayName = drafts.input("staffForm.display_name", { id: "staff-display-name", testid: "staff-display-name", maxlength: "120" });
    const role = drafts.input("staffForm.role", { tag: "select", id: "staff-role", testid: "staff-role", initial: "mediator",
      options: ROLES.map((r) => [r, t(`role.${r}`)]) });
    const password = drafts.input("staffForm.password", { id: "staff-password", type: "password", testid: "staff-password", autocomplete: "new-password", maxlength: "256" });
    const create = h("button", { type: "submit", class: "btn btn-primary", testid: "staff-create", text: t("staff.create") });
    const form = h("form", { class: "form", testid: "staff-form", novalidate: true },
      field("username", "staff.username", username, "staff.usernameHint"),
      field("display_name", "staff.displayName", displayName),
      field("role", "staff.role", role),
      field("password", "staff.password", password, "staff.passwordHint"),
      formError ? h("p", { class: "form-error", role: "alert", testid: "staff-form-error", text: formError }) : null,
      h("div", { class: "actions" }, create));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = { username: username.value.trim(), display_name: displayName.value.trim(), role: role.value, password: password.value };
      formErrors = validate(values);
      formError = null;
      if (Object.keys(formErrors).length) return draw();
      busy(create, async () => {
        try {
          const user = await api.post("/api/staff", values);
          drafts.clear("staffForm");
          page.toast("ok", t(user.awaiting_approval ? "staff.createdAwaiting" : "staff.created", { name: user.display_name }));
          await load();
        } catch (failure) {
          if (failure.field && ["username", "display_name", "password", "role"].includes(failure.field) && failure.code !== "username_taken") {
            formErrors = { [failure.field]: "server" };
          }
          formError = page.error(failure);
          draw();
        }
      });
    });

    let list;
    if (error) list = h("p", { class: "form-error", role: "alert", text: page.error(error) });
    else if (!staff) list = h("p", { class: "loading", text: t("common.loading") });
    else {
      const pages = Math.max(1, Math.ceil(staff.length / PER_PAGE));
      pageNumber = Math.min(pageNumber, pages);
      const shown = staff.slice((pageNumber - 1) * PER_PAGE, pageNumber * PER_PAGE);
      list = [h("div", { class: "table-wrap" }, h("table", { class: "table", testid: "staff-table" },
        h("thead", {}, h("tr", {}, ["staff.username", "staff.displayName", "staff.role", "staff.status", "links.actions"]
          .map((key) => h("th", { scope: "col", text: t(key) })))),
        h("tbody", {}, shown.map((user) => {
          /** @type {HTMLElement[]} */
          const actions = [];
          const mine = ctx.me.user?.user_id;
          if (!user.disabled && user.awaiting_approval) {
            if (user.created_by === mine) {
              actions.push(h("span", { class: "muted", testid: "staff-awaiting-other", text: t("staff.awaitingOther") }));
            } else {
              const approve = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "staff-approve", text: t("staff.approve") });
              approve.addEventListener("click", () => busy(approve, async () => {
                try {
                  await api.post(`/api/staff/${user.user_id}/approve`, {});
                  page.toast("ok", t("staff.approved", { name: user.display_name }));
                  await load();
                } catch (failure) {
                  page.fail(failure);
                }
              }));
              actions.push(approve);
            }
          }
          if (!user.disabled && user.user_id !== mine) {
            const confirming = confirmingUser === user.user_id;
            const action = h("button", { type: "button", class: `btn btn-small ${confirming ? "btn-danger" : "btn-quiet"}`,
              testid: confirming ? "staff-disable-confirm" : "staff-disable", text: t(confirming ? "staff.disableConfirm" : "staff.disable") });
            action.addEventListener("click", () => {
              if (!confirming) {
                confirmingUser = user.user_id;
                draw();
                return;
              }
              confirmingUser = null;
              busy(action, async () => {
                try {
                  await api.post(`/api/staff/${user.user_id}/disable`, {});
                  page.toast("ok", t("staff.disabled", { name: user.display_name }));
                  await load();
                } catch (failure) {
                  page.fail(failure);
                }
              });
            });
            actions.push(action);
          }
          const status = user.disabled ? ["badge-rejected", "staff.isDisabled"]
            : user.awaiting_approval ? ["badge-pending", "staff.awaiting"] : ["badge-ok", "staff.active"];
          return h("tr", { testid: "staff-row", dataset: { username: user.username } },
            h("td", { class: "mono", text: user.username }), h("td", { class: "cell-text", text: user.display_name }),
            h("td", { text: t(`role.${user.role}`) }),
            h("td", {}, h("span", { class: `badge ${status[0]}`, testid: "staff-status", text: t(status[1]) })),
            h("td", {}, actions));
        })))),
      pager(t, { page: pageNumber, perPage: PER_PAGE, total: staff.length, go: (p) => { pageNumber = p; draw(); }, testid: "staff-pager" })];
    }
    fill(root,
      h("div", { class: "page-head" }, h("h1", { text: t("staff.title") }), h("p", { class: "muted", text: t("staff.lead") })),
      h("div", { class: "grid-2 grid-wide-left" },
        h("section", { class: "card card-flush", testid: "staff-list" }, h("h2", { class: "card-title card-title-pad", text: t("staff.list") }), list),
        h("section", { class: "card", testid: "staff-new" }, h("h2", { class: "card-title", text: t("staff.new") }), form)));
  }

  async function load() {
    draw();
    try {
      staff = (await api.get("/api/staff")).staff;
      error = null;
    } catch (failure) {
      error = failure;
    }
    draw();
  }

  return { draw, load };
}

// My account, for every staff member: change my password. The server ends every session of mine
// (other browsers and devices too) and answers with a fresh one for this page.
export function accountView(ctx, root) {
  const { api, page } = ctx;
  let errors = {};
  let formError = null;

  function draw() {
    const { t } = page;
    const input = (id, autocomplete) => h("input", { id, type: "password", testid: id, autocomplete, maxlength: "256" });
    const current = input("account-current-password", "current-password");
    const fresh = input("account-new-password", "new-password");
    const again = input("account-repeat-password", "new-password");
    const field = (name, label, node, hint) => h("div", { class: ["field", errors[name] && "has-error"] },
      h("label", { for: node.id, text: t(label) }), node, hint ? h("p", { class: "hint", text: t(hint) }) : null,
      errors[name] ? h("p", { class: "field-error", testid: `error-account-${name}`,
        text: t(`field.${errors[name]}`, { field: t(label) }) }) : null);
    const submit = h("button", { type: "submit", class: "btn btn-primary", testid: "account-change-password",
      text: t("account.change") });
    const form = h("form", { class: "form", testid: "account-form", novalidate: true },
      field("current_password", "account.current", current),
      field("new_password", "account.new", fresh, "account.newHint"),
      field("repeat", "account.repeat", again),
      formError ? h("p", { class: "form-error", role: "alert", testid: "account-form-error", text: formError }) : null,
      h("div", { class: "actions" }, submit));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      errors = {};
      formError = null;
      if (!current.value) errors.current_password = "required";
      if ([...fresh.value.normalize("NFKC")].length < 12) errors.new_password = "password";
      else if (again.value !== fresh.value) errors.repeat = "passwordRepeat";
      if (Object.keys(errors).length) return draw();
      busy(submit, async () => {
        try {
          await api.post("/api/auth/password", { current_password: current.value, new_password: fresh.value });
          page.toast("ok", t("account.changed"));
          draw();
        } catch (failure) {
          if (failure.field === "new_password" || failure.field === "current_password") errors = { [failure.field]: "server" };
          formError = page.error(failure);
          draw();
        }
      });
    });
    fill(root,
      h("div", { class: "page-head" }, h("h1", { text: t("account.title") }), h("p", { class: "muted", text: t("account.lead") })),
      h("section", { class: "card card-narrow", testid: "account-password" }, h("h2", { class: "card-title", text: t("account.password") }), form));
  }

  return { draw, load: async () => draw() };
}
