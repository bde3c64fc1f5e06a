// Runs, triggers and connections in the browser against a real `flowforge serve`
// (e2e/server.ts): a failing job's error, cancel and re-run, a cron trigger edited while
// another client changed it (409), a connection edited. Self-contained: what it needs is
// created through the API first, as an admin would.
import { createToken, expect, expectAccessible, server, signIn, snap, test } from "./helpers";

test.describe.configure({ mode: "serial" });

async function asAdmin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: () => Promise<Record<string, unknown>> }> {
  const { baseURL, adminToken } = server();
  const answer = await fetch(`${baseURL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, json: () => answer.json() };
}

async function created(method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await asAdmin(method, path, body);
  expect(answer.status, `${method} ${path}`).toBe(201);
  return answer.json();
}

let connectionId = "";
let failingWorkflow = "";
let slowWorkflow = "";

test.beforeAll(async () => {
  const suffix = Math.random().toString(36).slice(2, 8);
  connectionId = (await created("POST", "/api/connections", { name: `core banking (runs ${suffix})`, type: "sqlite", database: "bfsi_core_banking.db" })).id as string;
  const database = (name: string, query: string, table: string) => ({
    name,
    type: "database",
    sourceConfig: { type: "sqlite", databaseConfig: { connectionId, query } },
    destinationConfig: { bronzeConfig: { tableName: `${table}_${suffix}` } },
  });
  failingWorkflow = (await created("POST", "/api/workflows", { name: `Failing (runs e2e ${suffix})` })).id as string;
  await created("POST", `/api/workflows/${failingWorkflow}/jobs`, database("Read a missing table", "SELECT * FROM no_such_table", "bronze_missing"));
  slowWorkflow = (await created("POST", "/api/workflows", { name: `Slow (runs e2e ${suffix})` })).id as string;
  // 50 million generated rows: minutes of work, so the run is surely still going when cancelled.
  await created(
    "POST",
    `/api/workflows/${slowWorkflow}/jobs`,
    database("Count to fifty million", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) SELECT x AS n FROM c", "bronze_numbers"),
  );
});

test("a cron trigger: created, its next fire times shown, a 409 when another client changed it, then saved", async ({ page }, testInfo) => {
  const editor = await createToken("editor");
  await signIn(page, editor, "editor");
  await page.goto(`/workflows/${slowWorkflow}?tab=triggers`);
  await expect(page.getByText("No trigger: this workflow runs when someone presses Run now.")).toBeVisible();

  // A bad expression: the API's 422, next to the field.
  await page.getByRole("button", { name: "Add a trigger" }).click();
  const form = page.getByRole("form", { name: "New trigger" });
  await form.getByLabel("Name (optional)").fill("nightly load");
  await form.getByLabel("Cron expression").fill("61 2 * * *");
  await form.getByRole("button", { name: "Create trigger" }).click();
  await expect(form.locator("p.text-red-800").first()).toBeVisible();
  await form.getByLabel("Cron expression").fill("0 2 * * *");
  await form.getByLabel("Time zone").fill("Europe/Paris");
  await expectAccessible(page);
  await snap(page, "20-trigger-form", testInfo);
  await form.getByRole("button", { name: "Create trigger" }).click();
  const row = page.locator("[data-testid=trigger][data-name='nightly load']");
  await expect(row.getByTestId("trigger-summary")).toHaveText("cron 0 2 * * * (Europe/Paris)");
  await expect(row.getByTestId("next-fire-times").locator("li")).toHaveCount(5);
  await expect(page.getByTestId("workflow-status")).toHaveText("draft");

  // Edit it here while another client changes it through the API.
  await row.getByRole("button", { name: "Edit nightly load" }).click();
  const edit = page.getByRole("form", { name: "Edit trigger nightly load" });
  await edit.getByLabel("Cron expression").fill("30 3 * * *");
  const triggers = await (await asAdmin("GET", `/api/workflows/${slowWorkflow}/triggers`)).json();
  const trigger = (triggers.data as { id: string; version: number }[])[0];
  const theirs = await asAdmin("PATCH", `/api/workflows/${slowWorkflow}/triggers/${trigger.id}`, { name: "nightly load", settings: { expression: "15 1 * * *", timezone: "UTC" }, version: trigger.version });
  expect(theirs.status).toBe(200);
  await edit.getByRole("button", { name: "Save" }).click();
  await expect(edit.getByTestId("stale")).toContainText("changed by someone else");
  await expect(edit.getByTestId("stale")).toContainText("HTTP 409");
  await expect(edit.getByLabel("Cron expression")).toHaveValue("30 3 * * *"); // nothing typed is lost
  await expectAccessible(page);
  await snap(page, "21-trigger-409", testInfo);
  await edit.getByRole("button", { name: "Reload" }).click();
  await expect(edit.getByRole("status")).toContainText("cron 15 1 * * * (UTC)");
  await expect(edit.getByLabel("Cron expression")).toHaveValue("30 3 * * *");
  await edit.getByRole("button", { name: "Save" }).click();
  await expect(row.getByTestId("trigger-summary")).toHaveText("cron 30 3 * * * (Europe/Paris)");
  const saved = await (await asAdmin("GET", `/api/workflows/${slowWorkflow}/triggers/${trigger.id}`)).json();
  expect((saved.settings as { expression: string }).expression).toBe("30 3 * * *");
  expect(saved.version).toBe(trigger.version + 2);

  // Disable, enable, and a webhook whose URL and secret are shown once.
  await row.getByRole("button", { name: "Disable nightly load" }).click();
  await expect(row.getByTestId("trigger-enabled")).toHaveText("disabled");
  await expect(row.getByTestId("next-fire-times")).toHaveCount(0);
  await row.getByRole("button", { name: "Enable nightly load" }).click();
  await expect(row.getByTestId("trigger-enabled")).toHaveText("enabled");
  await page.getByRole("button", { name: "Add a trigger" }).click();
  const hook = page.getByRole("form", { name: "New trigger" });
  await hook.getByLabel("Kind").selectOption("webhook");
  await hook.getByLabel("Name (optional)").fill("export ready");
  await hook.getByRole("button", { name: "Create trigger" }).click();
  await expect(page.getByTestId("secret-value")).toHaveText(/^whsec_/);
  const hookRow = page.locator("[data-testid=trigger][data-name='export ready']");
  await expect(hookRow.getByTestId("webhook-url")).toHaveText(/\/api\/hooks\/[0-9a-f-]+$/);
  await expectAccessible(page);
  await snap(page, "22-triggers", testInfo);
  await page.getByRole("button", { name: "I have kept it" }).click();
  await expect(page.getByTestId("secret-value")).toHaveCount(0);

  // Delete asks first.
  await hookRow.getByRole("button", { name: "Delete export ready" }).click();
  await hookRow.getByRole("group", { name: "Confirm delete" }).getByRole("button", { name: "Delete" }).click();
  await expect(hookRow).toHaveCount(0);
  await expect(page.locator("[data-testid=trigger]")).toHaveCount(1);
  // The cron trigger left for later: disable it so nothing fires during the other tests.
  await row.getByRole("button", { name: "Disable nightly load" }).click();
  await expect(row.getByTestId("trigger-enabled")).toHaveText("disabled");
});

test("a connection is edited (its password kept, never shown) and deleted after a confirmation", async ({ page }, testInfo) => {
  const saved = await created("POST", "/api/connections", { name: "ledger warehouse (e2e)", type: "postgresql", host: "127.0.0.1", port: 1, database: "ledger", username: "etl", password: "s3cret-ledger-pw" });
  const editor = await createToken("editor");
  await signIn(page, editor, "editor");
  await page.goto("/connections");
  const row = page.getByRole("row", { name: /ledger warehouse \(e2e\)/ });
  await row.getByRole("button", { name: "Edit ledger warehouse (e2e)" }).click();
  const form = page.getByRole("form", { name: "Edit connection ledger warehouse (e2e)" });
  await expect(form.getByLabel("database", { exact: true })).toHaveValue("ledger");
  await expect(form.getByLabel("password", { exact: true })).toHaveValue("");
  await expect(form.getByText("A password is stored. Leave this empty to keep it")).toBeVisible();
  await form.getByLabel("Name", { exact: true }).fill("ledger warehouse v2 (e2e)");
  await form.getByLabel("database", { exact: true }).fill("ledger_v2");
  // Pointing it at another port without the password: the API's 422, next to the field.
  await form.getByLabel("port", { exact: true }).fill("2");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form.getByText(/give the password again/)).toBeVisible();
  await form.getByLabel("port", { exact: true }).fill("1");
  await form.getByRole("button", { name: "Test connection" }).click();
  await expect(form.getByTestId("test-result")).toContainText("the saved connection was tested");
  await expectAccessible(page);
  await snap(page, "30-connection-edit", testInfo);
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form).toHaveCount(0);
  const v2 = page.getByRole("row", { name: /ledger warehouse v2 \(e2e\)/ });
  await expect(v2).toContainText("127.0.0.1:1 / ledger_v2");
  await expect(page.getByText("s3cret-ledger-pw")).toHaveCount(0);
  const read = await (await asAdmin("GET", `/api/connections/${saved.id}`)).json();
  expect([read.name, read.database, read.password, read.version]).toEqual(["ledger warehouse v2 (e2e)", "ledger_v2", "********", 2]);

  // Delete asks first; Keep keeps it.
  await v2.getByRole("button", { name: "Delete ledger warehouse v2 (e2e)" }).click();
  await v2.getByRole("button", { name: "Keep" }).click();
  await expect(v2).toBeVisible();
  await v2.getByRole("button", { name: "Delete ledger warehouse v2 (e2e)" }).click();
  await v2.getByRole("group", { name: /Confirm deleting/ }).getByRole("button", { name: "Delete" }).click();
  await expect(v2).toHaveCount(0);
  expect((await asAdmin("GET", `/api/connections/${saved.id}`)).status).toBe(404);
});

test("a connection pasted as a connection string: a bad one refused at the field, a wrong port's message, then saved as its fields", async ({ page }, testInfo) => {
  const suffix = Math.random().toString(36).slice(2, 8);
  await signIn(page, await createToken("editor"), "editor");
  await page.goto("/connections");
  await page.getByRole("button", { name: /New connection/ }).click();
  const form = page.getByRole("form", { name: "New connection" });
  await form.getByLabel("Name", { exact: true }).fill(`pasted pg ${suffix}`);
  await form.getByLabel("Type", { exact: true }).selectOption("postgresql");
  await form.getByRole("radio", { name: "Paste a connection string" }).check();
  await expect(form.getByLabel("host", { exact: true })).toHaveCount(0);
  const pasted = form.getByRole("textbox", { name: "Connection string" });
  await pasted.fill("not a connection string");
  await form.getByRole("button", { name: "Test connection" }).click();
  await expect(form.getByText(/has no '=value'/)).toBeVisible();
  await pasted.fill("postgresql://postgres@127.0.0.1:1/test");
  await form.getByRole("button", { name: "Test connection" }).click();
  await expect(form.getByTestId("test-result")).toContainText(/^Failed/);
  await expect(form.getByTestId("test-result")).toContainText("127.0.0.1");
  await pasted.fill("postgresql://postgres@127.0.0.1:5432/test");
  await form.getByRole("button", { name: "Test connection" }).click();
  await expect(form.getByTestId("test-result")).toContainText("Connected: connected to postgresql");
  await expectAccessible(page);
  await snap(page, "31-connection-string", testInfo);
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form).toHaveCount(0);
  await expect(page.getByRole("row", { name: new RegExp(`pasted pg ${suffix}`) })).toContainText("127.0.0.1:5432 / test");
});

test("a failing job shows its error and detail; Run again starts a new run", async ({ page }, testInfo) => {
  const editor = await createToken("editor");
  await signIn(page, editor, "editor");
  await page.goto(`/workflows/${failingWorkflow}`);
  await page.getByRole("button", { name: "Run now" }).click();
  await expect(page).toHaveURL(/\/executions\//);
  const first = page.url();
  await expect(page.getByTestId("execution-status")).toHaveText("failed", { timeout: 60_000 });
  const row = page.locator("[data-testid=job-row][data-job='Read a missing table']");
  await expect(row).toHaveAttribute("data-status", "failed");
  const error = row.getByTestId("job-error");
  await expect(error).toContainText("SQLite refused the query: no such table: no_such_table");
  await error.locator("summary").click();
  await expect(row.getByTestId("job-error-detail")).toHaveText("no such table: no_such_table");
  await expect(page.getByRole("alert")).toContainText("Read a missing table"); // the run's own error names the job
  await expectAccessible(page);
  await snap(page, "31-execution-failed", testInfo);

  await page.getByRole("button", { name: "Run again" }).click();
  await expect(page).not.toHaveURL(first);
  await expect(page).toHaveURL(/\/executions\//);
  await expect(page.getByTestId("execution-status")).toHaveText("failed", { timeout: 60_000 });
  const runs = await (await asAdmin("GET", `/api/executions?workflowId=${failingWorkflow}`)).json();
  expect((runs.data as unknown[]).length).toBe(2);
});

test("a running run is cancelled from its page and ends cancelled", async ({ page }, testInfo) => {
  const editor = await createToken("editor");
  await signIn(page, editor, "editor");
  await page.goto(`/workflows/${slowWorkflow}`);
  await page.getByRole("button", { name: "Run now" }).click();
  await expect(page).toHaveURL(/\/executions\//);
  const row = page.locator("[data-testid=job-row][data-job='Count to fifty million']");
  await expect(row).toHaveAttribute("data-status", "running", { timeout: 30_000 });
  await expect(page.getByTestId("execution-status")).toHaveText("running");
  await snap(page, "32-execution-running", testInfo);
  await page.getByRole("button", { name: "Cancel run" }).click();
  await expect(page.getByTestId("execution-status")).toHaveText("cancelled", { timeout: 60_000 });
  await expect(row).toHaveAttribute("data-status", "cancelled");
  await expect(page.getByRole("button", { name: "Cancel run" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Run again" })).toBeVisible();
  await expectAccessible(page);
  await snap(page, "33-execution-cancelled", testInfo);
  const id = page.url().split("/").pop();
  const read = await (await asAdmin("GET", `/api/executions/${id}`)).json();
  expect(read.status).toBe("cancelled");
});

async function waitEnded(executionId: string): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const state = await (await asAdmin("GET", `/api/executions/${executionId}`)).json();
    if (["succeeded", "failed", "cancelled"].includes(state.status as string)) return state.status as string;
    await new Promise((wait) => setTimeout(wait, 250));
  }
  throw new Error(`execution ${executionId} did not end`);
}

test("every page of the UI, screenshotted and axe-checked; the gallery's cards; next runs; a viewer sees PII masked", async ({ page }, testInfo) => {
  // A small table of customers (names, e-mails, phones, SSN last 4) and a schedule.
  const suffix = Math.random().toString(36).slice(2, 8);
  const table = `bronze_people_${suffix}`;
  const people = (await created("POST", "/api/workflows", { name: `People (runs e2e ${suffix})`, status: "active" })).id as string;
  await created("POST", `/api/workflows/${people}/jobs`, {
    name: "Ingest people",
    type: "database",
    sourceConfig: { type: "sqlite", databaseConfig: { connectionId, query: "SELECT customer_id, first_name, last_name, email, phone, ssn_last4, city, customer_segment FROM customers ORDER BY customer_id LIMIT 30" } },
    destinationConfig: { bronzeConfig: { tableName: table } },
  });
  const run = await asAdmin("POST", `/api/workflows/${people}/run`);
  expect(run.status).toBe(202);
  const executionId = (await run.json()).executionId as string;
  expect(await waitEnded(executionId)).toBe("succeeded");
  const cron = await created("POST", `/api/workflows/${people}/triggers`, { kind: "cron", name: "nightly", settings: { expression: "0 2 * * *" } });
  const firstFire = (cron.nextFireTimes as { utc: string }[])[0].utc;

  await page.goto("/login");
  await expectAccessible(page);
  await snap(page, "page-01-login", testInfo);
  const editor = await createToken("editor");
  await signIn(page, editor, "editor");

  await page.goto("/workflows");
  const row = page.getByRole("row", { name: new RegExp(`People \\(runs e2e ${suffix}\\)`) });
  await expect(row.getByTestId("next-run")).toHaveText(new Date(firstFire).toLocaleString());
  await expect(row).toContainText("succeeded");
  await expectAccessible(page);
  await snap(page, "page-02-workflows", testInfo);

  await page.goto("/templates");
  const card = page.getByTestId("template-card").filter({ hasText: "BFSI Customer 360" });
  await expect(card.getByTestId("complexity")).toHaveText("advanced");
  await expect(card.getByTestId("estimated-time")).toHaveText("about 25 min to a first run");
  await card.getByText("Creates 10 jobs").click();
  await expect(card.getByRole("list", { name: "Jobs BFSI Customer 360 creates" })).toContainText("gold_customer_360");
  await expectAccessible(page);
  await snap(page, "page-03-templates", testInfo);
  await page.getByLabel("Complexity").selectOption("simple");
  await expect(page.getByText("No template matches these filters.")).toBeVisible();
  await page.getByLabel("Complexity").selectOption("advanced");
  await expect(card).toBeVisible();
  await page.goto("/templates/bfsi-customer-360");
  await expect(page.getByRole("heading", { name: "BFSI Customer 360", level: 1 })).toBeVisible();
  await snap(page, "page-04-template-detail", testInfo);

  for (const [tab, check] of [
    ["jobs", "Ingest people"],
    ["runs", "succeeded"],
    ["lineage", table],
    ["triggers", "cron 0 2 * * * (UTC)"],
    ["settings", `People (runs e2e ${suffix})`],
  ]) {
    await page.goto(`/workflows/${people}?tab=${tab}`);
    await expect(page.getByRole("tabpanel").getByText(check).first()).toBeVisible({ timeout: 30_000 });
    await expectAccessible(page);
    await snap(page, `page-05-workflow-${tab}`, testInfo);
  }

  await page.goto(`/executions/${executionId}`);
  await expect(page.getByTestId("execution-status")).toHaveText("succeeded");
  await expectAccessible(page);
  await snap(page, "page-06-execution", testInfo);

  for (const [path, name, heading] of [
    ["/connections", "page-07-connections", "Connections"],
    ["/catalog", "page-08-catalog", "Data catalog"],
    ["/audit", "page-10-audit", "Audit log"],
  ]) {
    await page.goto(path);
    await expect(page.getByRole("heading", { name: heading, level: 1 })).toBeVisible();
    await expectAccessible(page);
    await snap(page, name, testInfo);
  }

  // The table's sample: an editor sees the values, PII columns marked.
  await page.goto(`/catalog/${table}`);
  const sample = page.getByTestId("sample-rows");
  await expect(sample.locator("tbody tr")).toHaveCount(20);
  await expect(sample.locator("th[data-pii=email]")).toContainText("PII");
  await expect(sample.getByText("@").first()).toBeVisible();
  await expect(page.getByTestId("pii-masked")).toHaveCount(0);
  await expectAccessible(page);
  await snap(page, "page-09-catalog-table", testInfo);

  // A viewer: the same sample, its e-mails, phones, names and SSN digits masked.
  const viewer = await createToken("viewer");
  await signIn(page, viewer, "viewer");
  await page.goto(`/catalog/${table}`);
  await expect(page.getByTestId("pii-masked")).toContainText("email (email)");
  await expect(page.getByTestId("pii-masked")).toContainText("ssn_last4 (ssn_last4)");
  await expect(sample.locator("tbody tr")).toHaveCount(20);
  await expect(sample.getByText("@")).toHaveCount(0);
  const columns = await sample.locator("thead th").allInnerTexts();
  const email = columns.findIndex((text) => text.startsWith("email"));
  const city = columns.findIndex((text) => text.startsWith("city"));
  await expect(sample.locator("tbody tr").first().locator("td").nth(email)).toHaveText(/^(\*\*\*\*|∅)$/);
  await expect(sample.locator("tbody tr").first().locator("td").nth(city)).not.toHaveText("****");
  await expectAccessible(page);
  await snap(page, "page-11-catalog-table-viewer", testInfo);
});
