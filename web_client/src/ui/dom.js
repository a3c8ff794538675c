// Building DOM from data. User text only ever becomes a text node: there is no innerHTML here.
// And every text is isolated (docs/threat-model.md, "Display spoofing"): an element whose text is set
// with `text`, or whose only child is a string, gets dir="auto"; a string among other children
// becomes a <bdi>; text inputs get dir="auto". Right-to-left text in a name then cannot reorder the
// label, role or number beside it, and each text takes its own direction from its first strong letter.

/**
 * `h("button", {class: "btn", text: "OK", on: {click}, dataset: {testid: "x"}, hidden: true}, ...children)`.
 * Other props become attributes (false/null/undefined leave them out). Children: nodes, strings
 * (as text), arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if ((props && props.text !== undefined && props.text !== null) || ISOLATED_INPUTS.has(tag)) node.dir = "auto";
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (key === "dataset") for (const [name, data] of Object.entries(value)) node.dataset[name] = String(data);
    else if (key === "testid") node.dataset.testid = String(value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else if (key === "value") node.value = String(value);
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "required" || key === "readOnly") node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

const ISOLATED_INPUTS = new Set(["input", "textarea"]);

function append(node, children) {
  const flat = [];
  const flatten = (items) => {
    for (const child of items) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) flatten(child);
      else flat.push(child);
    }
  };
  flatten(children);
  const alone = flat.length === 1 && node.childNodes.length === 0;
  for (const child of flat) {
    if (child instanceof Node) node.append(child);
    else if (alone) {
      if (!node.hasAttribute("dir")) node.dir = "auto";
      node.append(document.createTextNode(String(child)));
    } else {
      const isolated = document.createElement("bdi");
      isolated.textContent = String(child);
      node.append(isolated);
    }
  }
}

/** Set an element's text, isolated: for text set after the element was built. */
export function setText(node, text) {
  node.dir = "auto";
  node.textContent = text;
  return node;
}

export const $ = (id) => document.getElementById(id);

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A `<dl>` of label/value rows; a null value leaves the row out. */
export function definitionList(rows, className = "facts") {
  return h("dl", { class: className }, rows.filter((row) => row && row[1] !== null && row[1] !== undefined && row[1] !== "")
    .map(([label, value, testid]) => h("div", { class: "fact" }, h("dt", { text: label }),
      h("dd", { testid }, value instanceof Node ? value : String(value)))));
}

/** A `<select>` of `[value, label]` options. */
export function select(options, { value, ...props } = {}) {
  const node = h("select", props, options.map(([optionValue, label]) => h("option", { value: optionValue, text: label })));
  if (value !== undefined) node.value = value;
  return node;
}

/** Disable a button while `work` runs; returns work's result (or rethrows). */
export async function busy(button, work) {
  const buttons = Array.isArray(button) ? button : [button];
  for (const b of buttons) if (b) b.disabled = true;
  for (const b of buttons) if (b) b.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    for (const b of buttons) {
      if (!b) continue;
      b.disabled = false;
      b.removeAttribute("aria-busy");
    }
  }
}

/** Copy text to the clipboard; falls back to selecting the input for a manual copy. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
      try {
        return document.execCommand("copy");
      } catch {
        return false;
      }
    }
    return false;
  }
}
