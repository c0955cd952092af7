// The provisioning page: sign in with client credentials, then list,
// create, re-grant, rotate and revoke the token issuer's clients through
// its administration service, portcullis.admin.v1.ClientAdminService,
// with connect-web. The issuer decides every call: this page only shows
// what it answers, refusals included.

import { createClient } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { toDomain } from "./access";
import type { Domain } from "./access";
import { byId, el, refusalNodes as refusalOf, show } from "./dom";
import { fetchToken } from "./token";
import type { Token } from "./token";
import { LicensingPermissionSchema } from "../gen/example/licensing/v1/licensing_pb";
import { OrdersPermissionSchema } from "../gen/example/orders/v1/orders_pb";
import { ClientAdminService, PortcullisPermissionSchema } from "../gen/portcullis/admin/v1/admin_pb";
import type { Client } from "../gen/portcullis/admin/v1/admin_pb";

const config = document.body.dataset;
const adminUrl = config.adminUrl || location.origin;
const tokenUrl = config.tokenUrl ?? "";

let token: Token | undefined;

const auth: Interceptor = (next) => (req) => {
  if (token !== undefined) {
    req.header.set("Authorization", `Bearer ${token.accessToken}`);
  }
  return next(req);
};
const admin = createClient(ClientAdminService, createConnectTransport({ baseUrl: adminUrl, interceptors: [auth] }));

/** The permission domains the SDK knows, for when the issuer lists none. */
const sdkDomains: Domain[] = [LicensingPermissionSchema, OrdersPermissionSchema, PortcullisPermissionSchema].map(toDomain);

/** A permission the page offers to grant. */
interface Grantable {
  name: string;
  description: string;
  /** The signed-in token holds it; undefined when the issuer did not say. */
  grantable?: boolean;
}

/** The permissions, as the issuer lists them for the signed-in caller. */
let permissions: Grantable[] = sdkPermissions();
let clients: Client[] = [];

function sdkPermissions(): Grantable[] {
  return sdkDomains.flatMap((d) => d.permissions.map((p) => ({ name: p.name, description: p.description })));
}

function refusalNodes(e: unknown): (Node | string)[] {
  return refusalOf(e, "No answer reached the page: the issuer is down, serves no administration service, or its CORS settings do not allow this origin.");
}

/** heldNames names the permissions a token's perms claim grants. */
function heldNames(perms: Record<string, number>): string[] {
  return sdkDomains.flatMap((d) => {
    const bits = BigInt(perms[d.name] ?? 0);
    return d.permissions.filter((p) => (bits & p.mask) !== 0n).map((p) => p.name);
  });
}

/** notHeld lists the grants the signed-in token does not hold, as far as the issuer said. */
function notHeld(grants: string[]): string[] {
  const known = new Map(permissions.map((p) => [p.name, p.grantable]));
  return grants.filter((g) => known.get(g) === false);
}

function grantChips(grants: string[]): Node {
  const missing = new Set(notHeld(grants));
  if (grants.length === 0) {
    return el("span", { class: "hint" }, "nothing");
  }
  return el(
    "span",
    {},
    ...grants.flatMap((g) => [
      el("span", { class: missing.has(g) ? "chip missing" : "chip", title: missing.has(g) ? "your token does not hold it" : "" }, g),
      " ",
    ]),
  );
}

function lifetime(c: Client): string {
  const d = c.tokenLifetime;
  if (d === undefined) {
    return "issuer default";
  }
  const s = Number(d.seconds);
  return s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`;
}

/** parseLifetime reads "90s", "30m" or "2h"; "" is the issuer's default. */
function parseLifetime(s: string): { seconds: bigint } | undefined {
  s = s.trim();
  if (s === "") {
    return undefined;
  }
  const m = /^(\d+)(s|m|h)$/.exec(s);
  if (m === null) {
    throw new Error(`token lifetime "${s}" is not a number of seconds, minutes or hours, such as 90s, 30m or 2h`);
  }
  return { seconds: BigInt(m[1]) * ({ s: 1n, m: 60n, h: 3600n } as const)[m[2] as "s" | "m" | "h"] };
}

/** checkboxes offers every permission, checked when in checked. */
function checkboxes(name: string, checked: string[]): HTMLElement {
  const box = el("span", { class: "grants" });
  for (const p of permissions) {
    const input = el("input", { type: "checkbox", name, value: p.name }) as HTMLInputElement;
    input.checked = checked.includes(p.name);
    const label = el("label", { title: p.description, class: p.grantable === false ? "not-held" : "" }, input, ` ${p.name}`);
    if (p.grantable === false) {
      label.append(el("small", {}, " (not yours to grant)"));
    }
    box.append(label);
  }
  return box;
}

function checked(root: HTMLElement, name: string): string[] {
  return Array.from(root.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)).map((i) => i.value);
}

function showSecret(id: string, secret: string, what: string): void {
  byId("secret-client").textContent = id;
  byId("secret-what").textContent = what;
  byId("secret").textContent = secret;
  byId("secret-box").hidden = false;
}

async function refresh(): Promise<void> {
  const out = byId("list-status");
  show(out, "pending", "listing clients…");
  const [list, perms] = await Promise.allSettled([admin.listClients({}), admin.listPermissions({})]);
  if (perms.status === "fulfilled") {
    permissions = perms.value.permissions.map((p) => ({ name: p.name, description: p.description, grantable: p.grantable }));
  } else {
    permissions = sdkPermissions();
  }
  byId("new-grants").replaceChildren(checkboxes("new-grant", []));
  if (list.status === "rejected") {
    clients = [];
    renderClients();
    show(out, "error", "✗ ", ...refusalNodes(list.reason));
    return;
  }
  clients = list.value.clients;
  renderClients();
  show(out, "ok", `✓ ${clients.length} clients`);
}

function renderClients(): void {
  byId("clients").replaceChildren(
    ...clients.map((c) => {
      const beyond = notHeld(c.grants);
      // A client that signs in with its TLS certificate has no secret to rotate.
      const byCertificate = c.certificateAuth !== undefined;
      const actions = el("td", { class: "actions" });
      const edit = el("button", { type: "button", "data-action": "edit" }, "Change grants");
      const rotate = el("button", { type: "button", "data-action": "rotate" }, "Rotate secret");
      const revoke = el("button", { type: "button", "data-action": "revoke" }, "Revoke");
      edit.addEventListener("click", () => editGrants(c, row));
      rotate.addEventListener("click", () => void act(`rotating the secret of ${c.id}`, async () => {
        const res = await admin.rotateSecret({ id: c.id });
        showSecret(c.id, res.secret, "new secret");
        return `✓ new secret for ${c.id}: the old one no longer works`;
      }));
      revoke.addEventListener("click", () => {
        // Revoking asks twice: the first click arms the button.
        if (revoke.dataset.armed !== "true") {
          revoke.dataset.armed = "true";
          revoke.textContent = `Really revoke ${c.id}?`;
          return;
        }
        void act(`revoking ${c.id}`, async () => {
          await admin.revokeClient({ id: c.id });
          return `✓ revoked ${c.id}: it gets no more tokens`;
        });
      });
      actions.append(edit, " ", ...(byCertificate ? [] : [rotate, " "]), revoke);
      const row = el(
        "tr",
        { "data-client": c.id },
        el("td", {}, el("code", {}, c.id), byCertificate ? el("br") : "", byCertificate ? el("small", { class: "hint" }, `signs in with its certificate (${c.tokenEndpointAuthMethod})`) : ""),
        el("td", {}, c.tier || "—"),
        el("td", { class: "client-grants" }, grantChips(c.grants), beyond.length > 0 ? el("br") : "", beyond.length > 0 ? el("small", { class: "hint" }, "beyond your reach: the issuer refuses to change it") : ""),
        el("td", {}, lifetime(c)),
        actions,
      );
      return row;
    }),
  );
}

function editGrants(c: Client, row: HTMLElement): void {
  const open = row.nextElementSibling;
  if (open !== null && open.classList.contains("editor")) {
    open.remove();
  }
  const boxes = checkboxes(`grant-${c.id}`, c.grants);
  const save = el("button", { type: "button", "data-action": "save" }, "Save grants");
  const cancel = el("button", { type: "button", "data-action": "cancel" }, "Cancel");
  const editor = el("tr", { class: "editor", "data-editing": c.id }, el("td", { colspan: "5" }, boxes, " ", save, " ", cancel));
  cancel.addEventListener("click", () => editor.remove());
  save.addEventListener("click", () => void act(`changing the grants of ${c.id}`, async () => {
    const res = await admin.updateGrants({ id: c.id, grants: checked(editor, `grant-${c.id}`) });
    return `✓ ${c.id} is granted ${res.client?.grants.join(", ") || "nothing"}`;
  }));
  row.after(editor);
}

/** act runs a change, shows how it went in #action, and lists the clients again. */
async function act(what: string, run: () => Promise<string>): Promise<void> {
  const out = byId("action");
  show(out, "pending", `${what}…`);
  try {
    const text = await run();
    show(out, "ok", text);
  } catch (e) {
    show(out, "error", "✗ ", ...refusalNodes(e));
    return;
  }
  await refresh();
}

function setupSignIn(): void {
  const out = byId("signin");
  byId("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = (byId("client-id") as HTMLInputElement).value.trim();
    const secret = (byId("client-secret") as HTMLInputElement).value;
    show(out, "pending", `asking for a token for ${id}…`);
    fetchToken(tokenUrl, id, secret).then(
      (t) => {
        token = t;
        show(out, "ok", "signed in as ", el("b", {}, t.clientId), ` (${t.accessToken.slice(0, 12)}…, ${t.expiresIn}s), holding `, el("b", {}, heldNames(t.perms).join(", ") || "nothing"));
        void refresh();
      },
      (e: unknown) => {
        token = undefined;
        show(out, "error", e instanceof Error ? e.message : String(e));
      },
    );
  });
}

function setupCreate(): void {
  const form = byId("create-form");
  const out = byId("create-result");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = (byId("new-id") as HTMLInputElement).value.trim();
    const tier = (byId("new-tier") as HTMLInputElement).value.trim();
    show(out, "pending", `creating ${id}…`);
    void (async () => {
      try {
        const res = await admin.createClient({
          id,
          tier,
          grants: checked(form, "new-grant"),
          tokenLifetime: parseLifetime((byId("new-lifetime") as HTMLInputElement).value),
        });
        showSecret(id, res.secret, "secret");
        show(out, "ok", `✓ created ${id}, granted ${res.client?.grants.join(", ") || "nothing"}`);
      } catch (e) {
        show(out, "error", "✗ ", ...refusalNodes(e));
        return;
      }
      await refresh();
    })();
  });
}

byId("admin-url").textContent = adminUrl;
byId("token-url").textContent = tokenUrl;
byId("new-grants").replaceChildren(checkboxes("new-grant", []));
setupSignIn();
setupCreate();
document.body.dataset.ready = "true";
