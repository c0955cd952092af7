// The page: get a token, call the licensing service through the gateway in
// each protocol, watch a stream, and see what each call requires.

import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { LicensingService } from "../gen/example/licensing/v1/licensing_pb";
import { accessOf, domains, held } from "./access";
import type { MethodAccess } from "./access";
import { calls, licensingClients, orderLine, transportNames } from "./calls";
import type { TransportName } from "./calls";
import { byId, el, refusalNodes as refusalOf, show } from "./dom";
import { fetchToken } from "./token";
import type { Token } from "./token";

const config = document.body.dataset;
const gatewayUrl = config.gatewayUrl || location.origin;
const tokenUrl = config.tokenUrl ?? "";

let token: Token | undefined;

const auth: Interceptor = (next) => (req) => {
  if (token !== undefined) {
    req.header.set("Authorization", `Bearer ${token.accessToken}`);
  }
  return next(req);
};
const clients = licensingClients(gatewayUrl, auth);

/** refusalNodes renders a refusal of the gateway. */
function refusalNodes(e: unknown): (Node | string)[] {
  return refusalOf(e, "No answer reached the page: the gateway is down, or its CORS settings do not allow this origin.");
}

/** chips shows what a method requires, marking what the current token holds. */
function chips(a: MethodAccess): Node {
  if (!a.declared) {
    return el("span", { class: "chip missing" }, "undeclared: refused");
  }
  if (a.public) {
    return el("span", { class: "chip held" }, "public");
  }
  const have = new Set(token ? held(token.perms).map((p) => p.name) : []);
  return el(
    "span",
    {},
    ...a.requires.map((p) =>
      el(
        "span",
        { class: token ? (have.has(p.name) ? "chip held" : "chip missing") : "chip", title: `${p.constant} = ${p.value}: ${p.description}` },
        p.name,
      ),
    ),
  );
}

function renderPermissions(): void {
  byId("permissions").replaceChildren(
    ...domains.flatMap((d) =>
      d.permissions.map((p) =>
        el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, el("code", {}, `${p.constant} = ${p.value}`)), el("td", {}, `mask ${p.mask}`), el("td", {}, p.description)),
      ),
    ),
  );
}

const requiresCells: [HTMLElement, MethodAccess][] = [];

function renderCalls(): void {
  const rows = calls.map((call) => {
    const name = call.method.name;
    const a = accessOf(call.method);
    const out = el("output", { id: `result-${name}`, class: "result", "data-state": "idle" });
    const requiresCell = el("td", {}, chips(a));
    requiresCells.push([requiresCell, a]);
    const buttons = (Object.keys(transportNames) as TransportName[]).map((t) => {
      if (t === "connect-get" && call.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
        return el("td", { class: "na", title: "only methods declared NO_SIDE_EFFECTS may be called with GET" }, "POST only");
      }
      const b = el("button", { type: "button", "data-method": name, "data-transport": t }, transportNames[t]);
      b.addEventListener("click", () => void invoke(out, t, () => call.run(clients[t])));
      return el("td", {}, b);
    });
    return el("tr", {}, el("td", {}, el("code", {}, name), el("br"), el("small", {}, call.request)), requiresCell, ...buttons, el("td", {}, out));
  });
  byId("calls").replaceChildren(...rows);
}

/** via says how a call went and as whom. */
function via(t: TransportName, ok: boolean): HTMLElement {
  return el("span", { class: "via" }, `${transportNames[t]}, ${token ? "as " + token.clientId : "no token"} ${ok ? "✓" : "✗"} `);
}

async function invoke(out: HTMLElement, t: TransportName, run: () => Promise<string>): Promise<void> {
  out.dataset.transport = t;
  show(out, "pending", `${transportNames[t]}…`);
  try {
    const text = await run();
    show(out, "ok", via(t, true), text);
  } catch (e) {
    show(out, "error", via(t, false), ...refusalNodes(e));
  }
}

function setupToken(): void {
  const form = byId("token-form") as HTMLFormElement;
  const out = byId("token");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = (byId("client-id") as HTMLInputElement).value.trim();
    const secret = (byId("client-secret") as HTMLInputElement).value;
    show(out, "pending", `asking for a token for ${id}…`);
    fetchToken(tokenUrl, id, secret).then(
      (t) => {
        token = t;
        const perms = held(t.perms).map((p) => p.name);
        show(out, "ok", "token for ", el("b", {}, t.clientId), ` (${t.accessToken.slice(0, 12)}…, ${t.expiresIn}s), holds `, el("b", {}, perms.join(", ") || "nothing"));
        refreshChips();
      },
      (e: unknown) => {
        token = undefined;
        show(out, "error", e instanceof Error ? e.message : String(e));
        refreshChips();
      },
    );
  });
}

function refreshChips(): void {
  for (const [cell, a] of requiresCells) {
    cell.replaceChildren(chips(a));
  }
  byId("watch-requires").replaceChildren(chips(accessOf(LicensingService.method.watchLicenceOrders)));
}

let watching: AbortController | undefined;

function setupWatch(): void {
  const status = byId("watch-status");
  const list = byId("watch-list");
  const business = "biz-acme";
  for (const t of ["connect-post", "grpc-web"] as const) {
    byId(`watch-${t}`).addEventListener("click", () => {
      watching?.abort();
      const ctl = new AbortController();
      watching = ctl;
      list.replaceChildren();
      status.dataset.transport = t;
      show(status, "pending", `opening over ${transportNames[t]}…`);
      void (async () => {
        try {
          for await (const res of clients[t].watchLicenceOrders({ businessId: business }, { signal: ctl.signal })) {
            list.append(el("li", {}, orderLine(res.order)));
            show(status, "open", `open over ${transportNames[t]}: ${list.children.length} messages`);
          }
          show(status, "ended", `ended by the server after ${list.children.length} messages`);
        } catch (e) {
          if (ConnectError.from(e).code === Code.Canceled && ctl.signal.aborted) {
            show(status, "stopped", `stopped after ${list.children.length} messages`);
          } else {
            show(status, "error", via(t, false), ...refusalNodes(e));
          }
        }
      })();
    });
  }
  byId("watch-stop").addEventListener("click", () => watching?.abort());
}

byId("origin").textContent = location.origin;
byId("gateway-url").textContent = gatewayUrl;
byId("token-url").textContent = tokenUrl;
renderPermissions();
renderCalls();
refreshChips();
setupToken();
setupWatch();
document.body.dataset.ready = "true";
