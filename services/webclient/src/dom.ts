// What both pages do with the DOM: make elements, show a call's state in
// an output element, and render a refusal with its ErrorInfo detail.

import { refusal } from "./calls";

/** el makes an element with attributes and children. */
export function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) {
    throw new Error(`no #${id}`);
  }
  return e;
}

/**
 * show sets what an output element says, and its state: "pending" while a
 * call runs, then "ok" or "error". Every new call counts up data-seq.
 */
export function show(out: HTMLElement, state: string, ...content: (Node | string)[]): void {
  if (state === "pending") {
    out.dataset.seq = String(Number(out.dataset.seq ?? "0") + 1);
  }
  out.dataset.state = state;
  out.replaceChildren(...content);
}

/** refusalNodes renders an error: the code and message, then the ErrorInfo detail. */
export function refusalNodes(e: unknown, unreachable: string): (Node | string)[] {
  const r = refusal(e);
  const nodes: (Node | string)[] = [el("span", { class: "code" }, r.code), ` ${r.message}`];
  if (r.reason !== undefined) {
    const detail = el("span", { class: "detail" }, "ErrorInfo reason ", el("b", {}, r.reason));
    for (const [k, v] of r.metadata) {
      detail.append(`, ${k}: `, el("b", {}, v));
    }
    nodes.push(el("br"), detail);
  }
  if (r.unreachable) {
    nodes.push(el("br"), el("span", { class: "detail" }, unreachable));
  }
  return nodes;
}
