// Drives the web client in Chromium as a person would: types credentials,
// clicks the buttons and reads what the page shows. It asserts nothing:
// it prints, as JSON on stdout, what each step showed, the requests the
// page sent to the gateway and the page's uncaught errors; the Go test
// asserts on them. Its one argument is a JSON object:
//
//   {"page": URL, "refusedPage": URL, "gateway": URL,
//    "clients": {"reader": SECRET, "clerk": SECRET, "operator": SECRET},
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

const report = { steps: [], requests: [], pageErrors: [] };

try {
  const page = await open(cfg.page, "allowed");

  await token(page, "reader");
  for (const t of ["connect-post", "connect-get", "grpc-web"]) {
    await call(page, "reader", "ListRequirements", t);
    await call(page, "reader", "ListJurisdictions", t);
  }
  for (const t of ["connect-post", "grpc-web"]) {
    await call(page, "reader", "CreateLicenceOrder", t);
    await call(page, "reader", "GetLicenceOrder", t);
    await watch(page, "reader", t, 0);
  }

  await token(page, "clerk");
  for (const t of ["connect-post", "connect-get", "grpc-web"]) {
    await call(page, "clerk", "ListRequirements", t);
  }

  // The operator watches, then creates an order, which the open stream
  // shows as it arrives.
  await token(page, "operator");
  await watch(page, "operator", "connect-post", 2);
  await call(page, "operator", "CreateLicenceOrder", "connect-post");
  await watchMore(page, "operator", "connect-post", 3);
  await stop(page, "operator", "connect-post");
  await watch(page, "operator", "grpc-web", 3);
  await call(page, "operator", "CreateLicenceOrder", "grpc-web");
  await watchMore(page, "operator", "grpc-web", 4);
  await call(page, "operator", "GetLicenceOrder", "grpc-web");
  await page.screenshot({ path: path.join(cfg.screenshots, "allowed-origin.png"), fullPage: true });
  await stop(page, "operator", "grpc-web");

  // The same page from an origin that neither the issuer nor the gateway
  // allows.
  const refused = await open(cfg.refusedPage, "refused");
  await token(refused, "reader", "refused");
  for (const t of ["connect-post", "connect-get", "grpc-web"]) {
    await call(refused, "anonymous", "ListJurisdictions", t, "refused");
  }
  await refused.screenshot({ path: path.join(cfg.screenshots, "refused-origin.png"), fullPage: true });
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");

async function open(url, origin) {
  const page = await context.newPage();
  page.on("pageerror", (e) => report.pageErrors.push(`${origin}: ${e.message}`));
  page.on("request", (r) => {
    if (r.url().startsWith(cfg.gateway)) {
      report.requests.push({ origin, method: r.method(), url: r.url(), contentType: r.headers()["content-type"] ?? "" });
    }
  });
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
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

function record(step) {
  report.steps.push(step);
  return step;
}

async function token(page, client, origin = "allowed") {
  await page.fill("#client-id", client);
  await page.fill("#client-secret", cfg.clients[client]);
  const seq = await seqOf(page, "#token");
  await page.click("#get-token");
  const r = await settled(page, "#token", seq);
  return record({ origin, client, step: "token", ...r });
}

async function call(page, client, method, transport, origin = "allowed") {
  const out = `#result-${method}`;
  const seq = await seqOf(page, out);
  await page.click(`button[data-method="${method}"][data-transport="${transport}"]`);
  const r = await settled(page, out, seq);
  return record({ origin, client, step: method, transport, ...r });
}

/** watch starts a stream and waits for n messages, or for its refusal when n is 0. */
async function watch(page, client, transport, n) {
  const seq = await seqOf(page, "#watch-status");
  await page.click(`#watch-${transport}`);
  if (n === 0) {
    const r = await settled(page, "#watch-status", seq);
    return record({ origin: "allowed", client, step: "WatchLicenceOrders", transport, ...r, messages: [] });
  }
  return watchMore(page, client, transport, n);
}

/** watchMore waits until the open stream listed n messages. */
async function watchMore(page, client, transport, n) {
  await page.waitForFunction(
    (n) => document.querySelectorAll("#watch-list li").length >= n || document.querySelector("#watch-status").dataset.state === "error",
    n,
  );
  return record({ origin: "allowed", client, step: "WatchLicenceOrders", transport, ...(await watchState(page)) });
}

async function stop(page, client, transport) {
  await page.click("#watch-stop");
  await page.waitForFunction(() => document.querySelector("#watch-status").dataset.state !== "open");
  return record({ origin: "allowed", client, step: "StopWatching", transport, ...(await watchState(page)) });
}

async function watchState(page) {
  return {
    state: await page.$eval("#watch-status", (e) => e.dataset.state),
    text: await page.$eval("#watch-status", (e) => e.innerText),
    messages: await page.$$eval("#watch-list li", (lis) => lis.map((li) => li.innerText)),
  };
}
