// Drives the permission graph page and the provisioning page in Chromium
// as an operator would: filters the graph, signs in, creates a client,
// changes its grants, uses its secret on the calling page, rotates and
// revokes it. It asserts nothing: it prints, as JSON on stdout, what each
// step showed and the page's uncaught errors; the Go test asserts on
// them. Its one argument is a JSON object:
//
//   {"graph": URL, "admin": URL, "calls": URL,
//    "clients": {"admin": SECRET, "auditor": SECRET, "reader": SECRET},
//    "chromium": PATH, "userDataDir": DIR, "screenshots": DIR}

import { chromium } from "playwright-core";
import path from "node:path";

const cfg = JSON.parse(process.argv[2]);
const timeout = 15_000;

const context = await chromium.launchPersistentContext(cfg.userDataDir, {
  executablePath: cfg.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(timeout);

const report = { steps: [], pageErrors: [] };
const shot = (page, name) => page.screenshot({ path: path.join(cfg.screenshots, name), fullPage: true });

try {
  // The permission graph, whole, then narrowed by typing and by picking.
  const graph = await open(cfg.graph, "graph");
  await graphStep(graph, "all", "");
  await shot(graph, "graph.png");
  await graph.fill("#q", "LicensingService");
  await graphStep(graph, "typed", "LicensingService");
  await shot(graph, "graph-licensing.png");
  await graph.selectOption("#pick", "client:reader");
  await graphStep(graph, "picked", "client:reader");
  await graph.hover('g.node[data-kind="client"]');
  record({ page: "graph", step: "hover", text: String(await graph.$$eval("#drawing path.edge.hl", (ps) => ps.length)) });

  // The provisioning page, as callers without the permissions first.
  const admin = await open(cfg.admin, "admin");
  await signIn(admin, "reader", cfg.clients.reader);
  await signIn(admin, "auditor", cfg.clients.auditor);
  await create(admin, "auditor", "sneaky", ["LIC.READ_REQUIREMENTS"], "", "");
  await shot(admin, "admin-refused.png");

  // The admin creates a client, is refused a grant it does not hold,
  // grants one it does, and is refused the operator's secret.
  await signIn(admin, "admin", cfg.clients.admin);
  await create(admin, "admin", "newbie", ["LIC.READ_REQUIREMENTS"], "free", "30m");
  const secret = await admin.$eval("#secret", (e) => e.textContent);
  record({ page: "admin", client: "admin", step: "secret", text: await admin.$eval("#secret-box", (e) => e.innerText), secret });
  await editGrants(admin, "newbie", ["ORD.WRITE"], []);
  await editGrants(admin, "newbie", ["LIC.READ_ORDERS"], ["ORD.WRITE"]);
  await rowAction(admin, "operator", "rotate");
  record({ page: "admin", client: "admin", step: "rows", rows: await rows(admin) });
  await shot(admin, "admin.png");

  // The new client's secret gets a token, and calls through the gateway.
  const calls = await open(cfg.calls, "calls");
  await callToken(calls, "newbie", secret);
  for (const method of ["ListRequirements", "GetLicenceOrder", "CreateLicenceOrder"]) {
    await call(calls, "newbie", method);
  }
  await shot(calls, "newbie-calls.png");

  // Rotated, the old secret fails and the new one works; revoked, no
  // secret works.
  await rowAction(admin, "newbie", "rotate");
  const rotated = await admin.$eval("#secret", (e) => e.textContent);
  record({ page: "admin", client: "admin", step: "rotated secret", text: await admin.$eval("#secret-box", (e) => e.innerText), secret: rotated });
  await callToken(calls, "newbie", secret, "old secret");
  await callToken(calls, "newbie", rotated, "new secret");
  await rowAction(admin, "newbie", "revoke");
  record({ page: "admin", client: "admin", step: "rows", rows: await rows(admin) });
  await callToken(calls, "newbie", rotated, "revoked");
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");

async function open(url, name) {
  const page = await context.newPage();
  page.on("pageerror", (e) => report.pageErrors.push(`${name}: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

function record(step) {
  report.steps.push(step);
  return step;
}

async function graphStep(page, step, query) {
  await page.waitForFunction((q) => document.querySelector("#content")?.dataset.query === q, query);
  return record({
    page: "graph",
    step,
    text: await page.$eval("#content .showing", (e) => e.innerText).catch(() => ""),
    methods: await page.$$eval("#content tr[data-procedure]", (trs) => trs.map((tr) => tr.dataset.procedure + " | " + tr.innerText.replace(/\s+/g, " ").trim())),
    clients: await page.$$eval("#content tr[data-client]", (trs) => trs.map((tr) => tr.dataset.client)),
    drawn: await page.$$eval("#drawing g.node", (gs) => gs.map((g) => g.dataset.kind + " " + g.querySelector("text").textContent)),
    url: page.url(),
  });
}

/** settled waits until an output counts past seq and no longer says "pending". */
async function settled(page, selector, seq) {
  await page.waitForFunction(
    ([sel, seq]) => {
      const e = document.querySelector(sel);
      return e && Number(e.dataset.seq ?? 0) > seq && e.dataset.state !== "pending";
    },
    [selector, seq],
  );
  return page.$eval(selector, (e) => ({ state: e.dataset.state, text: e.innerText }));
}

async function seqOf(page, selector) {
  return page.$eval(selector, (e) => Number(e.dataset.seq ?? 0));
}

/** signIn signs in, then records the list of clients the page asks for. */
async function signIn(page, client, secret) {
  await page.fill("#client-id", client);
  await page.fill("#client-secret", secret);
  const seq = await seqOf(page, "#signin");
  const listSeq = await seqOf(page, "#list-status");
  await page.click("#sign-in");
  record({ page: "admin", client, step: "sign-in", ...(await settled(page, "#signin", seq)) });
  return record({ page: "admin", client, step: "list", ...(await settled(page, "#list-status", listSeq)) });
}

/** change runs a change and, when it went through, waits for the list the page asks for after it. */
async function change(page, output, click) {
  const seq = await seqOf(page, output);
  const listSeq = await seqOf(page, "#list-status");
  await click();
  const r = await settled(page, output, seq);
  if (r.state === "ok") {
    await settled(page, "#list-status", listSeq);
  }
  return r;
}

async function create(page, client, id, grants, tier, lifetime) {
  await page.fill("#new-id", id);
  await page.fill("#new-tier", tier);
  await page.fill("#new-lifetime", lifetime);
  for (const box of await page.$$('#new-grants input[type="checkbox"]')) {
    await box.setChecked(grants.includes(await box.getAttribute("value")));
  }
  const r = await change(page, "#create-result", () => page.click("#create"));
  return record({ page: "admin", client, step: `create ${id}`, ...r });
}

async function editGrants(page, id, check, uncheck) {
  await page.click(`tr[data-client="${id}"] button[data-action="edit"]`);
  const editor = `tr[data-editing="${id}"]`;
  for (const g of check) {
    await page.check(`${editor} input[value="${g}"]`);
  }
  for (const g of uncheck) {
    await page.uncheck(`${editor} input[value="${g}"]`);
  }
  const r = await change(page, "#action", () => page.click(`${editor} button[data-action="save"]`));
  return record({ page: "admin", client: "admin", step: `grants ${id} +${check.join(",")}`, ...r });
}

async function rowAction(page, id, action) {
  const button = `tr[data-client="${id}"] button[data-action="${action}"]`;
  const r = await change(page, "#action", async () => {
    await page.click(button);
    if (action === "revoke") {
      await page.click(button); // it asks twice
    }
  });
  return record({ page: "admin", client: "admin", step: `${action} ${id}`, ...r });
}

async function rows(page) {
  return page.$$eval("#clients tr[data-client]", (trs) => trs.map((tr) => tr.innerText.replace(/\s+/g, " ").trim()));
}

async function callToken(page, client, secret, step = "token") {
  await page.fill("#client-id", client);
  await page.fill("#client-secret", secret);
  const seq = await seqOf(page, "#token");
  await page.click("#get-token");
  return record({ page: "calls", client, step, ...(await settled(page, "#token", seq)) });
}

async function call(page, client, method) {
  const out = `#result-${method}`;
  const seq = await seqOf(page, out);
  await page.click(`button[data-method="${method}"][data-transport="connect-post"]`);
  return record({ page: "calls", client, step: method, ...(await settled(page, out, seq)) });
}
