// The web console in a real browser (Debian's Chromium, headless, driven
// by playwright-core), run by daemon/cli/tests/console_browser.rs, which
// starts the appliance and passes everything in LETHE_CONSOLE_TEST (JSON):
//   { url, scenario: "flows" | "idle", screenshots, answer,
//     users: { name: { password, secret (base32) } } }
// Each scenario exits 0 when every check held; otherwise it prints what
// failed and exits 1. It prints one JSON line of measurements at the end.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const cfg = JSON.parse(process.env.LETHE_CONSOLE_TEST);
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(cfg.screenshots, { recursive: true });
const results = { scenario: cfg.scenario, pages_checked: [], screenshots: [] };

function fail(msg) {
  throw new Error(msg);
}

// TOTP (RFC 6238: SHA-1, 6 digits, 30 s). The appliance accepts each code
// once and the previous/next step, so each user's codes come from
// successive steps, waiting for the clock when both are spent.
const lastStep = {};
function base32(s) {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    value = (value << 5) | abc.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
async function totp(user) {
  for (;;) {
    const now = Math.floor(Date.now() / 1000 / 30);
    const step = Math.max((lastStep[user] ?? 0) + 1, now);
    if (step <= now + 1) {
      lastStep[user] = step;
      const msg = Buffer.alloc(8);
      msg.writeBigUInt64BE(BigInt(step));
      const h = createHmac("sha1", base32(cfg.users[user].secret)).update(msg).digest();
      const o = h[h.length - 1] & 0xf;
      const n = (h.readUInt32BE(o) & 0x7fffffff) % 1000000;
      return String(n).padStart(6, "0");
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// The newest page, for the diagnostics of a failure.
let current = null;

async function newPage() {
  // The appliance's certificate is self-signed: trusted for this context.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  current = page;
  page.cspViolations = [];
  page.offOrigin = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) page.cspViolations.push(m.text());
  });
  page.on("request", (r) => {
    if (!r.url().startsWith(cfg.url) && !r.url().startsWith("data:")) page.offOrigin.push(r.url());
  });
  return page;
}

// axe-core on the page as it is now: no serious or critical violation.
// (Evaluated through the DevTools protocol, which the page's CSP does not
// govern; the page itself runs no inline code.)
async function check(page, name) {
  await page.evaluate(AXE);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    fail(`${name}: axe-core: ` + JSON.stringify(bad.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html) })), null, 1));
  }
  // Every visible form control has a label.
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map((e) => e.outerHTML));
  if (unlabelled.length) fail(`${name}: unlabelled controls: ${unlabelled}`);
  if (page.cspViolations.length) fail(`${name}: CSP violations: ${page.cspViolations}`);
  if (page.offOrigin.length) fail(`${name}: requests to another origin: ${page.offOrigin}`);
  const csp = (await page.request.get(page.url())).headers()["content-security-policy"] ?? "";
  if (!csp.includes("script-src 'self'") || csp.includes("unsafe")) fail(`${name}: CSP ${csp}`);
  results.pages_checked.push(name);
}

async function shot(page, name) {
  const file = path.join(cfg.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  results.screenshots.push(file);
}

async function login(page, user, { expectBays = true } = {}) {
  await page.goto(`${cfg.url}/console/login`);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(cfg.users[user].password);
  await page.getByLabel("One-time code").fill(await totp(user));
  await Promise.all([page.waitForURL(/\/console\/bays/), page.getByRole("button", { name: "Log in" }).click()]);
  if (expectBays) await page.getByRole("heading", { name: "Bays" }).waitFor();
}

async function flows() {
  // --- The operator -----------------------------------------------------
  const op = await newPage();
  await op.goto(`${cfg.url}/console/bays`);
  if (!op.url().includes("/console/login")) fail(`no session, not sent to login: ${op.url()}`);
  // The login form: autocomplete tokens for password managers and codes.
  for (const [label, token] of [["User name", "username"], ["Password", "current-password"], ["One-time code", "one-time-code"]]) {
    const got = await op.getByLabel(label).getAttribute("autocomplete");
    if (got !== token) fail(`${label}: autocomplete ${got}, not ${token}`);
  }
  await check(op, "login");
  await shot(op, "login");
  // A wrong code is refused with a message.
  await op.getByLabel("User name").fill("oscar");
  await op.getByLabel("Password").fill(cfg.users.oscar.password);
  await op.getByLabel("One-time code").fill("000000");
  await op.getByRole("button", { name: "Log in" }).click();
  await op.locator("#login-error").waitFor();

  // First load of the bays page: its weight (document, style, script).
  let bytes = 0;
  const counted = (r) => r.body().then((b) => { bytes += b.length; }).catch(() => {});
  const pending = [];
  op.on("response", (r) => pending.push(counted(r)));
  await login(op, "oscar");
  await op.waitForLoadState("networkidle");
  await Promise.all(pending);
  op.removeAllListeners("response");
  results.bays_first_load_bytes = bytes;
  if (bytes >= 200 * 1024) fail(`the bays page's first load is ${bytes} bytes`);

  const tile = op.locator("li.tile", { has: op.getByRole("heading", { name: "Bay loops" }) });
  await tile.locator("[data-state=waiting]").waitFor();
  await check(op, "bays-waiting");
  await shot(op, "bays-waiting");

  // Start: the typed confirmation, then password and code again.
  await tile.getByRole("link", { name: /Start wipe/ }).click();
  await op.getByRole("heading", { name: /Start wipe in bay loops/ }).waitFor();
  const serial = (await op.locator("#drive-serial").innerText()).trim();
  results.serial = serial;
  // The worker wants password and code again before it looks at the
  // answer: the form asks for them and keeps what was typed.
  await op.getByLabel(/To confirm, type/).fill("not-this-drive");
  await op.getByRole("button", { name: "Start wipe" }).click();
  await op.getByRole("group", { name: "Your password and code again" }).waitFor();
  await check(op, "start-reauth");
  await shot(op, "start-reauth");
  await op.getByLabel("Password").fill(cfg.users.oscar.password);
  await op.getByLabel("One-time code").fill(await totp("oscar"));
  await op.getByRole("button", { name: "Start wipe" }).click();
  // Re-authenticated, the wrong confirmation is refused with the reason;
  // nothing starts.
  await op.locator("#start-error").waitFor();
  results.refusal = await op.locator("#start-error").innerText();
  if (!/^Refused|^Not accepted/.test(results.refusal)) fail(`refusal: ${results.refusal}`);
  await check(op, "start-refused");
  await shot(op, "start-refused");
  const answer = serial !== "none reported" ? serial : cfg.answer;
  await op.getByLabel(/To confirm, type/).fill(answer);
  await Promise.all([op.waitForURL(/\/console\/bays\?started=/), op.getByRole("button", { name: "Start wipe" }).click()]);

  // Live progress: the grid is swapped in without reloading the page.
  const marker = await op.evaluate(() => { window.__notReloaded = true; return true; });
  const seen = new Set();
  const deadline = Date.now() + 60_000;
  let shotBusy = false;
  for (;;) {
    const state = await tile.locator("[data-state]").getAttribute("data-state").catch(() => null);
    const value = await tile.locator("progress").getAttribute("value", { timeout: 200 }).catch(() => null);
    if (value !== null) {
      seen.add(value);
      if (!shotBusy) {
        await shot(op, "bays-busy");
        await check(op, "bays-busy");
        shotBusy = true;
      }
    }
    if (state === "passed") break;
    if (state === "failed" || state === "refused") fail(`the wipe ended ${state}`);
    if (Date.now() > deadline) fail(`the wipe did not pass in time (state ${state})`);
    await op.waitForTimeout(150);
  }
  if (!marker || !(await op.evaluate(() => window.__notReloaded === true))) fail("the page was reloaded");
  results.progress_values_seen = seen.size;
  // The grid went from waiting to busy (with its bar) to passed in the
  // same page, without a reload. How many distinct bar values were seen
  // depends on the machine's speed (the worker's status is a snapshot of
  // at most a second ago); at least one is required.
  if (seen.size < 1) fail("no progress bar was seen while the wipe ran");
  await check(op, "bays-passed");
  await shot(op, "bays-passed");

  // The certificate's PDF names the drive.
  const pdfLink = tile.getByRole("link", { name: /Certificate .* \(PDF\)/ });
  const href = await pdfLink.getAttribute("href");
  const pdf = await op.request.get(new URL(href, cfg.url).toString());
  if (pdf.status() !== 200 || pdf.headers()["content-type"] !== "application/pdf") fail(`PDF: ${pdf.status()}`);
  const pdfBytes = await pdf.body();
  if (!pdfBytes.subarray(0, 5).equals(Buffer.from("%PDF-"))) fail("not a PDF");
  // The PDF's text (its fonts are embedded subsets: the words are glyph
  // ids, so poppler's pdftotext reads them back).
  const pdfFile = path.join(cfg.screenshots, "certificate.pdf");
  writeFileSync(pdfFile, pdfBytes);
  const text = execFileSync("pdftotext", ["-layout", pdfFile, "-"]).toString("utf8");
  for (const want of [cfg.device, String(cfg.answer)]) {
    if (!text.includes(want)) fail(`the PDF does not name the drive (${want}):\n${text}`);
  }
  results.pdf_bytes = pdfBytes.length;

  // --- The auditor --------------------------------------------------------
  const au = await newPage();
  await login(au, "audrey");
  const auTile = au.locator("li.tile", { has: au.getByRole("heading", { name: "Bay loops" }) });
  await auTile.waitFor();
  if (await au.getByRole("link", { name: /Start/ }).count()) fail("the auditor sees a start button");
  await check(au, "bays-auditor");
  await shot(au, "bays-auditor");
  // Even the start URL does not start anything for an auditor: the
  // worker refuses (the page shows why).
  await au.getByRole("link", { name: "Certificates" }).click();
  await au.getByRole("heading", { name: "Certificates" }).waitFor();
  // The unfiltered list has the new certificate. A loop device reports
  // no serial and a bay job no asset tag, so it is found again by the
  // date range it was issued in (today, UTC).
  await au.locator("table.results").waitFor();
  const day = (d) => d.toISOString().slice(0, 10);
  await au.getByLabel("Issued from").fill(day(new Date()));
  await au.getByLabel("Issued before").fill(day(new Date(Date.now() + 86400_000)));
  await au.getByRole("button", { name: "Search" }).click();
  await au.waitForURL(/from=/);
  await au.locator("table.results").waitFor();
  const rows = await au.locator("table.results tbody tr").count();
  if (rows !== 1) fail(`search by date: ${rows} rows`);
  if (!(await au.locator("table.results .badge-passed").count())) fail("no passed badge");
  await check(au, "certificates");
  await au.getByRole("button", { name: /^Verify / }).click();
  await au.locator("#verified.ok").waitFor();
  await check(au, "certificates-verified");
  await shot(au, "certificates-verified");
  // The backups page (this appliance has no backup job configured).
  await au.getByRole("link", { name: "Backups" }).click();
  await au.getByRole("heading", { name: "Backups" }).waitFor();
  await au.locator("#no-backups").waitFor();
  await check(au, "backups");
  await au.getByRole("link", { name: "Certificates" }).click();
  await au.getByRole("heading", { name: "Certificates" }).waitFor();
  // A search that matches nothing says so.
  await au.getByLabel("Serial").fill("no-such-serial-anywhere");
  await au.getByRole("button", { name: "Search" }).click();
  await au.locator("#no-results").waitFor();
}

async function idle() {
  const page = await newPage();
  await login(page, "ivan");
  await page.getByRole("link", { name: "Certificates" }).click();
  await page.getByRole("heading", { name: "Certificates" }).waitFor();
  const t0 = Date.now();
  // Nothing is done: the page's own checks do not count as activity, so
  // the session ends after the idle timeout and the page goes to login.
  await page.waitForURL(/\/console\/login\?ended=1/, { timeout: cfg.idle_wait_ms });
  results.returned_after_ms = Date.now() - t0;
  await page.locator("#ended").waitFor();
  await check(page, "session-ended");
  await shot(page, "session-ended");
  // The old cookie is no session any more: a page goes back to login.
  await page.goto(`${cfg.url}/console/bays`);
  if (!page.url().includes("/console/login")) fail(`after the end: ${page.url()}`);
}

try {
  if (cfg.scenario === "flows") await flows();
  else if (cfg.scenario === "idle") await idle();
  else fail(`unknown scenario ${cfg.scenario}`);
  console.log(JSON.stringify(results));
  await browser.close();
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  if (current) {
    const body = await current.locator("body").innerText().catch(() => "(no body)");
    console.error(`at ${current.url()}:\n${body.slice(0, 2000)}`);
    await current.screenshot({ path: path.join(cfg.screenshots, "failure.png"), fullPage: true }).catch(() => {});
  }
  console.log(JSON.stringify(results));
  await browser.close();
  process.exit(1);
}
