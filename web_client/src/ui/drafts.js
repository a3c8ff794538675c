// Form state that outlives a redraw: the desk redraws whole views (after every action and on a
// language switch), and what someone was typing must survive that.
import { h } from "./dom.js";

export class Drafts {
  constructor() {
    this.values = new Map();
  }

  get(key, initial = "") {
    return this.values.has(key) ? this.values.get(key) : initial;
  }

  set(key, value) {
    this.values.set(key, value);
  }

  clear(prefix) {
    for (const key of [...this.values.keys()]) if (key === prefix || key.startsWith(`${prefix}.`)) this.values.delete(key);
  }

  /** An input (or textarea/select via `tag`) whose value is kept under `key`. */
  input(key, { tag = "input", initial = "", options = null, ...props } = {}) {
    const node = tag === "select"
      ? h("select", props, (options ?? []).map(([value, label]) => h("option", { value, text: label })))
      : h(tag, props);
    node.value = this.get(key, initial);
    if (tag === "select" && node.value !== this.get(key, initial)) node.selectedIndex = 0;
    this.set(key, node.value);
    node.addEventListener(tag === "select" ? "change" : "input", () => this.set(key, node.value));
    return node;
  }
}
