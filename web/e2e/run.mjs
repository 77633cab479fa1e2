// End-to-end test of the dashboard in headless Chromium (Debian's, driven
// by playwright-core) against a running stack. Driven by
// query-api/tests/api/web.rs, which starts the services behind a router and
// passes:
//   AV_BASE_URL     the router's root (the dashboard at /, the API at /api/v1)
//   AV_OTEL_PYTHON  a Python with the OpenTelemetry SDK (tests/clients)
//   AV_SCREENSHOTS  where to save a screenshot of every page
// Exits non-zero with a message on the first failed expectation.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const base = process.env.AV_BASE_URL ?? "http://127.0.0.1:8080";
const shots = process.env.AV_SCREENSHOTS ?? path.join(here, "screenshots");
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const browser = await chromium.launch({
  executablePath: process.env.AV_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const failures = [];
const expect = (cond, what) => {
  if (!cond) throw new Error(`expected: ${what}`);
};

async function audit(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  // Evaluated over the DevTools protocol: the dashboard's
  // Content-Security-Policy (no inline script) stays on for the whole run.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of serious) failures.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
}

let page;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // The dashboard runs under its Content-Security-Policy: any violation
  // (an inline script or style the policy refuses) fails the run.
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) failures.push(`CSP violation: ${m.text()}`);
  });

  // Sign up (the session is the HttpOnly cookie; nothing in local storage).
  await page.goto(base + "/");
  await page.getByRole("heading", { name: "Log in" }).waitFor();
  await audit(page, "login");
  await page.getByRole("button", { name: "No account? Sign up" }).click();
  const email = `e2e-${Date.now()}@example.com`;
  await page.getByLabel("Name").fill("E2E User");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();
  expect((await page.evaluate(() => Object.keys(localStorage).length)) === 0, "nothing in local storage");
  await page.getByText(/No agents yet/).waitFor();
  await audit(page, "agents-empty");

  // Create a key: the raw key is shown once.
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByLabel("Name").fill("e2e sdk");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-key").textContent())?.trim() ?? "";
  expect(/^av_[0-9a-f]{64}$/.test(key), `a raw key, got ${key}`);
  await audit(page, "api-keys");

  // Send a trace with the OpenTelemetry Python SDK through the router.
  const service = `e2e-agent-${Date.now()}`;
  const out = execFileSync(
    process.env.AV_OTEL_PYTHON ?? "python3",
    [path.join(here, "../../tests/clients/otel_python.py"), service],
    {
      env: {
        ...process.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: base + "/api/v1/otlp",
        OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer ${key}`,
        OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
      },
    },
  ).toString();
  const traceHex = JSON.parse(out).trace_id;
  const traceId = `${traceHex.slice(0, 8)}-${traceHex.slice(8, 12)}-${traceHex.slice(12, 16)}-${traceHex.slice(16, 20)}-${traceHex.slice(20)}`;

  // The explorer shows it (reload until the writer stored it).
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.goto(`${base}/traces?agent=${encodeURIComponent(service)}`);
    await page.getByRole("heading", { name: "Traces" }).waitFor();
    found = await page
      .locator(`a[href="/traces/${traceId}"]`)
      .waitFor({ timeout: 1500 })
      .then(() => true)
      .catch(() => false);
  }
  if (!found) {
    await page.screenshot({ path: path.join(shots, "traces-missing.png"), fullPage: true });
    const text = (await page.locator("main").textContent())?.slice(0, 500);
    expect(false, `the trace ${traceId} is listed in the explorer; the page says: ${text}`);
  }
  await audit(page, "traces");

  // Filter by model, reload: the filter survives in the URL.
  await page.getByLabel("Model").fill("gpt-4o-mini");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForURL(/model=gpt-4o-mini/);
  await page.reload();
  expect((await page.getByLabel("Model").inputValue()) === "gpt-4o-mini", "the model filter survives a reload");
  await page.locator(`a[href="/traces/${traceId}"]`).waitFor();

  // Its waterfall, a span's panel, and the outcome.
  const started = Date.now();
  await page.locator(`a[href="/traces/${traceId}"]`).click();
  await page.getByRole("tree", { name: "Span tree" }).waitFor();
  await page.getByRole("treeitem").nth(2).waitFor();
  const waterfallMs = Date.now() - started;
  expect((await page.getByRole("treeitem").count()) === 3, "three spans in the waterfall");
  await page.getByRole("button", { name: /chat gpt-4o-mini/ }).click();
  await page
    .getByRole("complementary", { name: /chat gpt-4o-mini/ })
    .getByText("gpt-4o-mini")
    .first()
    .waitFor();
  await page.getByRole("button", { name: /Collapse invoke_agent planner/ }).click();
  expect((await page.getByRole("treeitem").count()) === 1, "collapsing the root hides its children");
  await page.getByRole("button", { name: /Expand invoke_agent planner/ }).click();
  await audit(page, "trace");
  await page.getByRole("form", { name: "Outcome" }).getByLabel("Success").selectOption("true");
  await page.getByRole("form", { name: "Outcome" }).getByLabel("Outcome").fill("resolved-by-e2e");
  await page.getByRole("button", { name: "Save outcome" }).click();
  await page.getByText("Saved.").waitFor();

  // The agent's statistics see it.
  await page.getByRole("link", { name: "Agents" }).click();
  const row = page.getByRole("row", { name: new RegExp(service) });
  await row.waitFor();
  expect((await row.textContent())?.includes("100.0%"), "the agent's success rate follows the outcome");
  // Its 30-day sparkline counts the run.
  await row.getByRole("img", { name: `${service}: 1 run in 30 days` }).waitFor();
  await audit(page, "agents");

  // The agent's page: its charts and outcomes.
  await row.getByRole("link", { name: service }).click();
  await page.getByRole("heading", { name: service }).waitFor();
  await page.getByRole("img", { name: "Runs per day" }).waitFor();
  expect((await page.locator(".chart canvas").count()) >= 4, "four charts drawn");
  await page.getByRole("button", { name: "7 days" }).click();
  await page.getByRole("cell", { name: "resolved-by-e2e" }).first().waitFor();
  // The outcome's share and cost.
  const outcomeRow = page
    .getByRole("table", { name: "Outcomes and their cost" })
    .getByRole("row", { name: /resolved-by-e2e/ });
  expect((await outcomeRow.textContent())?.includes("100.0%"), "the outcome is all of the agent's runs");
  await audit(page, "agent");

  // A log record of the trace, exported over OTLP/JSON through the router.
  const nowNs = `${Date.now()}000000`;
  const logExport = await fetch(`${base}/api/v1/otlp/v1/logs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: nowNs,
                  severityNumber: 17,
                  body: { stringValue: "Checkout FAILED for order E2E-1" },
                  traceId: traceHex,
                },
              ],
            },
          ],
        },
      ],
    }),
  });
  expect(logExport.ok, `the log export is accepted (${logExport.status})`);

  // Search it and jump to its trace.
  await page.getByRole("link", { name: "Logs" }).click();
  await page.getByLabel("Terms").fill("checkout failed");
  await page.getByLabel("Service").fill(service);
  await page.getByRole("button", { name: "Search" }).click();
  let logFound = false;
  for (let i = 0; i < 20 && !logFound; i++) {
    logFound = await page
      .getByRole("cell", { name: /Checkout FAILED for order E2E-1/ })
      .waitFor({ timeout: 1000 })
      .then(() => true)
      .catch(() => false);
    if (!logFound) await page.reload();
  }
  expect(logFound, "the log record is found");
  await audit(page, "logs");
  await page.getByRole("link", { name: "Open trace" }).first().click();
  await page.waitForURL(new RegExp(`/traces/${traceId}$`));
  await page.getByRole("tree", { name: "Span tree" }).waitFor();
  await page.getByText("Checkout FAILED for order E2E-1").waitFor();

  // Metrics: the histogram the OpenTelemetry client sent, as p95 per hour.
  await page.getByRole("link", { name: "Metrics" }).click();
  await page.getByRole("button", { name: "agent.latency" }).click();
  await page.getByRole("form", { name: "Query" }).getByLabel("Aggregation").selectOption("p95");
  await page.getByRole("button", { name: "Query" }).click();
  await page.waitForURL(/agg=p95/);
  await page.getByRole("img", { name: /p95 of agent.latency/ }).waitFor();
  // A reload keeps the query (the page's URL is the dashboard's, not a
  // service's /metrics).
  await page.reload();
  await page.getByRole("img", { name: /p95 of agent.latency/ }).waitFor();
  await audit(page, "metrics");

  // Prompts: two versions registered through the API, compared, diffed,
  // and rolled back in the browser.
  const prompt = `e2e-prompt-${Date.now()}`;
  for (const [version, text] of [
    [1, "You are a classifier.\nClassify: {{ticket}}"],
    [2, "You are an expert classifier.\nThink step by step.\nClassify: {{ticket}}"],
  ]) {
    const r = await fetch(`${base}/api/v1/dashboard/prompts/`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: prompt, version, template_text: text }),
    });
    expect(r.status === 201, `prompt v${version} created (${r.status})`);
  }
  await page.getByRole("link", { name: "Prompts" }).click();
  await page.getByRole("link", { name: prompt }).click();
  await page.getByRole("heading", { name: prompt }).waitFor();
  await page.getByText("+ Think step by step.").waitFor();
  await page.getByText("- You are a classifier.").waitFor();
  await audit(page, "prompt");
  await page.getByRole("button", { name: "Make v1 active" }).click();
  await page.getByRole("button", { name: "Make v2 active" }).waitFor();
  expect((await page.getByRole("button", { name: "Make v1 active" }).count()) === 0, "v1 is active after the rollback");

  // Compare two agents: a second one, sent as an SDK batch.
  const second = `e2e-second-${Date.now()}`;
  const now = new Date();
  const batch = await fetch(`${base}/api/v1/traces/batch`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      traces: [
        {
          trace: {
            trace_id: crypto.randomUUID(),
            agent: second,
            started_at: new Date(now.getTime() - 1500).toISOString(),
            ended_at: now.toISOString(),
            success: false,
            outcome: "escalated",
          },
          spans: [],
        },
      ],
    }),
  });
  expect(batch.ok, `the batch is accepted (${batch.status})`);
  let both = false;
  for (let i = 0; i < 40 && !both; i++) {
    await page.goto(`${base}/compare`);
    await page.getByRole("heading", { name: "Compare agents" }).waitFor();
    both = await page
      .getByRole("checkbox", { name: second })
      .waitFor({ timeout: 1000 })
      .then(() => true)
      .catch(() => false);
  }
  expect(both, "the second agent is listed");
  await page.getByRole("checkbox", { name: service }).check();
  await page.getByRole("checkbox", { name: second }).check();
  await page.getByRole("rowheader", { name: second, exact: true }).waitFor();
  await page.getByRole("rowheader", { name: service, exact: true }).waitFor();
  const secondRow = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: second, exact: true }) });
  expect((await secondRow.first().textContent())?.includes("escalated: 1"), "outcomes per agent");
  await audit(page, "compare");

  // An alert: created, disabled, its (empty) history.
  await page.getByRole("link", { name: "Alerts" }).click();
  await page.getByRole("form", { name: "Create an alert" }).getByLabel("Agent").selectOption({ label: service });
  await page.getByLabel(/^Threshold/).fill("0.5");
  await page.getByRole("button", { name: "Create alert" }).click();
  const alertRow = page.getByRole("row", { name: new RegExp(`${service}.*failure_rate`) });
  await alertRow.waitFor();
  // Edit its threshold.
  await alertRow.getByRole("button", { name: "Edit" }).click();
  await page
    .getByRole("form", { name: "Edit the alert" })
    .getByLabel(/^Threshold/)
    .fill("0.25");
  await page.getByRole("button", { name: "Save alert" }).click();
  await alertRow.getByRole("cell", { name: "0.25", exact: true }).waitFor();
  await alertRow.getByRole("button", { name: "Disable" }).click();
  await alertRow.getByRole("cell", { name: "disabled" }).waitFor();
  await alertRow.getByRole("button", { name: "History" }).click();
  await page.getByText("This alert has not fired.").waitFor();
  await audit(page, "alerts");

  // A webhook endpoint: the secret is shown once; a test event is queued
  // and listed among the deliveries.
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("heading", { name: "Webhooks" }).waitFor();
  await page.getByText(/No endpoint yet/).waitFor();
  await page.getByLabel("URL").fill("http://127.0.0.1:9/agentvista-hook");
  await page.getByRole("form", { name: "Add an endpoint" }).getByLabel("Name").fill("e2e hook");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  const whsec = (await page.getByTestId("webhook-secret").textContent())?.trim() ?? "";
  expect(/^whsec_[0-9a-f]{64}$/.test(whsec), `a signing secret, got ${whsec}`);
  await page.getByRole("button", { name: "Send a test event" }).click();
  await page.getByRole("button", { name: "Deliveries" }).click();
  await page.getByRole("cell", { name: /test/ }).first().waitFor();
  await audit(page, "webhooks");

  // Members: the signed-up user is the organization's admin.
  await page.getByRole("link", { name: "Members" }).click();
  await page.getByRole("cell", { name: email }).waitFor();
  expect((await page.getByLabel(`Role of ${email}`).inputValue()) === "admin", "the owner is an admin");
  await audit(page, "members");

  // The plan: this month's spans against the limit (3 from the OTel
  // client, 1 from the second agent's batch had no spans: 3 in all).
  await page.getByRole("link", { name: "Plan" }).click();
  await page.getByRole("meter", { name: "Spans used this month" }).waitFor();
  expect(
    (await page.getByRole("meter", { name: "Spans used this month" }).getAttribute("aria-valuenow")) === "3",
    "three spans metered this month",
  );
  await audit(page, "plan");

  // Revoke the key.
  await page.getByRole("link", { name: "API keys" }).click();
  page.once("dialog", (d) => d.accept());
  await page
    .getByRole("row", { name: /e2e sdk/ })
    .getByRole("button", { name: "Revoke" })
    .click();
  await page
    .getByRole("row", { name: /e2e sdk/ })
    .getByText("revoked")
    .waitFor();

  console.log(JSON.stringify({ ok: failures.length === 0, waterfall_ms: waterfallMs, failures }));
} catch (e) {
  let where = "";
  if (page) {
    await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => undefined);
    where = ` at ${page.url()}: ${(
      (await page
        .locator("body")
        .textContent()
        .catch(() => "")) ?? ""
    ).slice(0, 400)}`;
  }
  failures.push(String(e?.stack ?? e) + where);
  console.log(JSON.stringify({ ok: false, failures }));
} finally {
  await browser.close();
}
process.exit(failures.length === 0 ? 0 : 1);
