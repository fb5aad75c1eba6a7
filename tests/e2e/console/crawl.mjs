// Crawls ecrd's web console in headless Chromium: loads every console page
// reachable by links from the start URLs, records console errors, page
// errors and failed responses, takes a screenshot of each page, runs the
// in-page accessibility checks below, and prints one JSON report on stdout.
//
//   node crawl.mjs <base-url> <screenshot-dir> <start-path>...
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, shots, ...starts] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });

const queue = starts.map((p) => new URL(p, base).href);
const seen = new Set(queue);
const pages = [];
const MAX_PAGES = 200;

// Runs inside the page: facts a test checks, and accessibility problems.
function inspect() {
  const problems = [];
  const h1 = [...document.querySelectorAll("h1")];
  if (h1.length !== 1) problems.push(`expected one h1, found ${h1.length}`);
  let last = 1;
  for (const h of document.querySelectorAll("h1, h2, h3, h4")) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push(`heading ${h.tagName} after h${last}: "${h.textContent}"`);
    last = level;
  }
  for (const input of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = (input.id && document.querySelector(`label[for="${input.id}"]`)) ||
      input.getAttribute("aria-label") || input.closest("label");
    if (!labelled) problems.push(`input without a label: ${input.outerHTML}`);
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.getAttribute("role") !== "img" || !svg.querySelector(":scope > title")) {
      problems.push("svg without role=img and a title");
    }
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("th")) problems.push("table without header cells");
  }
  if (!document.documentElement.lang) problems.push("html without lang");
  // Contrast of badges and links: WCAG AA (4.5:1) for their text.
  const rgb = (s) => (s.match(/\d+(\.\d+)?/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const contrasts = [];
  for (const badge of document.querySelectorAll(".badge")) {
    const style = getComputedStyle(badge);
    const r = ratio(rgb(style.color), rgb(style.backgroundColor));
    contrasts.push(r);
    if (r < 4.5) problems.push(`badge "${badge.textContent}" contrast ${r.toFixed(2)} < 4.5`);
  }
  const links = [...document.querySelectorAll("a[href]")].map((a) => new URL(a.getAttribute("href"), location.href).href);
  return {
    title: document.title,
    h1: h1.map((h) => h.textContent.trim()),
    text: document.body.innerText,
    links,
    problems,
    minBadgeContrast: contrasts.length ? Math.min(...contrasts) : null,
    overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
  };
}

const pictured = new Set();
while (queue.length && pages.length < MAX_PAGES) {
  const url = queue.shift();
  const page = await context.newPage();
  const consoleErrors = [];
  const failed = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("requestfailed", (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.url()} ${r.status()}`); });
  const response = await page.goto(url, { waitUntil: "load" });
  const facts = await page.evaluate(inspect);
  // Screenshots of the first page of each view (desktop, full page, and a
  // phone-sized screen); the others are checked but not pictured.
  const view = new URL(url).pathname.replace(/^\/_ecrd\/console\/?/, "") || "overview";
  let shot = null;
  let phoneShot = null;
  if (!pictured.has(view)) {
    pictured.add(view);
    shot = join(shots, `${view}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    const small = await phone.newPage();
    await small.goto(url, { waitUntil: "load" });
    phoneShot = join(shots, `${view}-phone.png`);
    await small.screenshot({ path: phoneShot, fullPage: false });
    await small.close();
  }
  await page.close();
  pages.push({ url, status: response ? response.status() : 0, consoleErrors, failed, shot, phoneShot, ...facts });
  for (const link of facts.links) {
    const u = new URL(link);
    u.hash = "";
    if (u.origin === new URL(base).origin && u.pathname.startsWith("/_ecrd/console") && !seen.has(u.href)) {
      seen.add(u.href);
      queue.push(u.href);
    }
  }
}
await browser.close();
process.stdout.write(JSON.stringify({ pages, unvisited: queue.length }));
