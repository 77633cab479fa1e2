// Cross-site request forgery, as a browser makes it: a signed-in user in
// Chromium (Debian's, driven by playwright-core) opens another page that
// auto-submits a form to the API with the session cookie. Driven by
// query-api/tests/api/web.rs, which passes:
//   AV_BASE_URL   the query API's root, http://127.0.0.1:PORT
// The other pages are served here, on another port of the same host
// (same-site: the Lax cookie goes along) and under another host name,
// `localhost` (cross-site). Prints one JSON line with what each step saw;
// exits non-zero on the first failed expectation.
import { chromium } from "playwright-core";
import http from "node:http";

const base = process.env.AV_BASE_URL ?? "http://127.0.0.1:8080";
const fail = (m) => {
  console.log(JSON.stringify({ ok: false, error: m }));
  process.exit(1);
};

// The attacker's page: a form to `target`, submitted on load.
const attacker = http.createServer((req, res) => {
  const target = new URL(req.url, "http://x").searchParams.get("target");
  res.setHeader("content-type", "text/html");
  res.end(`<!doctype html><form id="f" method="POST" action="${target}"></form>
<script>document.getElementById("f").submit()</script>`);
});
await new Promise((r) => attacker.listen(0, "127.0.0.1", r));
const port = attacker.address().port;

const browser = await chromium.launch({
  executablePath: process.env.AV_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const seen = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // Sign up in the page's own origin: the session cookie is set.
  await page.goto(`${base}/api/v1/openapi.json`);
  const email = `csrf-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const signup = await page.evaluate(
    async ([email]) => {
      const r = await fetch("/api/v1/auth/signup", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password: "correct horse battery" }),
      });
      return r.status;
    },
    [email],
  );
  if (signup !== 201) fail(`sign-up answered ${signup}`);
  const me = async () => (await context.request.get(`${base}/api/v1/auth/me`)).status();
  if ((await me()) !== 200) fail("not signed in after sign-up");

  for (const [name, origin] of [
    ["same_site", `http://127.0.0.1:${port}`],
    ["cross_site", `http://localhost:${port}`],
  ]) {
    for (const path of ["/api/v1/auth/logout", "/api/v1/me/api-keys/"]) {
      const answer = page.waitForResponse((r) => r.url().startsWith(`${base}${path}`));
      await page.goto(`${origin}/?target=${encodeURIComponent(`${base}${path}`)}`);
      const status = (await answer).status();
      seen[`${name} ${path}`] = status;
      // Refused (403) whether or not the cookie went along; never done.
      if (status !== 403) fail(`${name} form post to ${path} answered ${status}`);
    }
    if ((await me()) !== 200) fail(`the ${name} page logged the user out`);
  }
  // The dashboard's own request (same origin) still works: logout ends it.
  await page.goto(`${base}/api/v1/openapi.json`);
  const own = await page.evaluate(async () => (await fetch("/api/v1/auth/logout", { method: "POST" })).status);
  seen["same_origin /api/v1/auth/logout"] = own;
  if (own !== 204) fail(`the same-origin logout answered ${own}`);
  if ((await me()) !== 401) fail("still signed in after the same-origin logout");
} finally {
  await browser.close();
  attacker.close();
}
console.log(JSON.stringify({ ok: true, seen }));
