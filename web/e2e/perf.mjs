// Dashboard performance in headless Chromium (Debian's, driven by
// playwright-core) against a running query API that serves the dashboard.
// Run by `cargo run --release -p query-api --example bench_queries --
// 10000000 30 --dashboard`, which loads the 10M-span data set and passes:
//   AV_BASE_URL        the query API's root (dashboard at /, API at /api/v1)
//   AV_EMAIL, AV_PASSWORD   a member of the measured organization
//   AV_TRACE_ID        a trace with many spans (the waterfall case)
//   AV_AGENT_ID        an agent of the measured organization
//   AV_ITERATIONS      navigations per case (after 2 warm-ups)
// Prints one JSON line: per case p50/p95 in ms from navigation start to
// the content shown, the waterfall's frame times while scrolling, and the
// JavaScript the first page loads (gzipped bytes).
import { chromium } from "playwright-core";
import { gzipSync } from "node:zlib";

const base = process.env.AV_BASE_URL ?? "http://127.0.0.1:8080";
const iterations = Number(process.env.AV_ITERATIONS ?? 10);
const browser = await chromium.launch({
  executablePath: process.env.AV_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(60_000);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x) => Math.round(x * 10) / 10;

// The session cookie, as the login page would get it.
const login = await page.request.post(`${base}/api/v1/auth/login`, {
  data: { email: process.env.AV_EMAIL, password: process.env.AV_PASSWORD },
});
if (!login.ok()) throw new Error(`login failed: ${login.status()}`);

// JavaScript of the first page (the agents overview after login).
const scripts = new Map();
page.on("response", async (r) => {
  if (r.url().endsWith(".js")) scripts.set(r.url(), gzipSync(await r.body().catch(() => Buffer.alloc(0))).length);
});
await page.goto(`${base}/agents`);
await page.locator("main table tbody tr").first().waitFor();
const firstPageJs = [...scripts.values()].reduce((a, b) => a + b, 0);
page.removeAllListeners("response");

/** Milliseconds from navigation start until an element matching the CSS
 * selector `ready` is in the page, observed in the page itself on every
 * animation frame (the content is then painted in that frame). */
async function shown(url, ready) {
  await page.goto(url, { waitUntil: "commit" });
  return page.evaluate(
    (sel) =>
      new Promise((resolve, reject) => {
        const give_up = setTimeout(() => reject(new Error(`${sel} never appeared`)), 60_000);
        const check = () => {
          if (document.querySelector(sel)) {
            clearTimeout(give_up);
            resolve(performance.now());
          } else requestAnimationFrame(check);
        };
        check();
      }),
    ready,
  );
}

async function measure(label, url, ready) {
  const times = [];
  for (let i = 0; i < iterations + 2; i++) {
    const t = await shown(url, ready);
    if (i >= 2) times.push(t);
  }
  return { case: label, p50_ms: round(pct(times, 50)), p95_ms: round(pct(times, 95)), n: times.length };
}

const cases = [];
cases.push(
  await measure("agents overview (table + sparklines)", `${base}/agents`, "main table tbody tr svg.sparkline"),
);
cases.push(await measure("traces explorer, first page", `${base}/traces`, "main table tbody tr a"));
cases.push(
  await measure(
    "agent detail, 4 charts (30 days)",
    `${base}/agents/${process.env.AV_AGENT_ID}`,
    ".chart:nth-of-type(4) canvas",
  ),
);
cases.push(
  await measure("trace waterfall, large trace", `${base}/traces/${process.env.AV_TRACE_ID}`, '[role="treeitem"]'),
);
const spans = await page.locator("dl.facts dd").nth(4).textContent();

// Scroll the waterfall from top to bottom over ~3 s and record every
// frame's duration (requestAnimationFrame deltas).
const frames = await page.evaluate(async () => {
  const el = document.querySelector('[role="tree"]');
  const deltas = [];
  let last = performance.now();
  const total = el.scrollHeight - el.clientHeight;
  const steps = 180;
  for (let i = 1; i <= steps; i++) {
    el.scrollTop = (total * i) / steps;
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    deltas.push(now - last);
    last = now;
  }
  return { deltas, rows: el.querySelectorAll('[role="treeitem"]').length };
});
const d = frames.deltas.slice(1);
const scroll = {
  frames: d.length,
  p50_frame_ms: round(pct(d, 50)),
  p95_frame_ms: round(pct(d, 95)),
  max_frame_ms: round(Math.max(...d)),
  // A frame is dropped when it took longer than two 60 Hz intervals.
  dropped: d.filter((x) => x > 33.4).length,
  rows_in_dom: frames.rows,
};

await browser.close();
console.log(JSON.stringify({ first_page_js_gzip_bytes: firstPageJs, spans_in_trace: spans, cases, scroll }));
