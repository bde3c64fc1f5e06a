// The jobs tab of a workflow, in the browser against a real `flowforge serve`: a database job
// from a new connection (a failing and a passing Test connection, the table picked from the
// list, its sample rows), run to success; an existing job edited and the change still there
// after a reload; a bad derived-column expression refused in the API's words while typed.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { createToken, expect, expectAccessible, server, signIn, snap, test } from "./helpers";
import { ROOT, WEB } from "./server";

test.describe.configure({ mode: "serial" });

const suffix = Math.random().toString(36).slice(2, 8);
const bronzeTable = `bronze_accounts_${suffix}`;
let workflowUrl = "";
let workflowId = "";

async function asAdmin(path: string, init: RequestInit = {}): Promise<Response> {
  const { baseURL, adminToken } = server();
  return fetch(`${baseURL}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json", ...(init.headers ?? {}) },
  });
}

async function theJob(name: string) {
  const jobs = await asAdmin(`/api/workflows/${workflowId}/jobs`).then((r) => r.json());
  return jobs.data.find((job: { name: string }) => job.name === name);
}

test.beforeAll(async () => {
  const created = await asAdmin("/api/workflows", { method: "POST", body: JSON.stringify({ name: `Jobs tab (e2e ${suffix})`, status: "active" }) });
  expect(created.status).toBe(201);
  workflowId = (await created.json()).id;
  workflowUrl = `/workflows/${workflowId}`;
});

test("a database job: new connection, Test connection failing then passing, a table from the list, its sample, a successful run", async ({ page }, testInfo) => {
  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  await page.getByRole("button", { name: "Add a database job" }).click();
  const jobForm = page.getByRole("form", { name: "New database job" });
  await expect(jobForm).toBeVisible();

  // A new connection, inline: first to a port nothing listens on, so the server says why.
  const wrong = { type: "postgresql", authentication: "sql", host: "127.0.0.1", port: 1, database: "test", username: "postgres", password: "not-the-password" };
  const expectedFailure = await asAdmin("/api/test-connection/database", { method: "POST", body: JSON.stringify({ connection: wrong }) }).then((r) => r.json());
  expect(expectedFailure.success).toBe(false);
  await page.getByRole("button", { name: "New connection" }).click();
  const connection = page.getByRole("form", { name: "New connection" });
  await connection.getByLabel("Name", { exact: true }).fill(`core banking ${suffix}`);
  await connection.getByLabel("Type", { exact: true }).selectOption("postgresql");
  await connection.getByLabel("host", { exact: true }).fill(wrong.host);
  await connection.getByLabel("port", { exact: true }).fill(String(wrong.port));
  await connection.getByLabel("database", { exact: true }).fill(wrong.database);
  await connection.getByLabel("username", { exact: true }).fill(wrong.username);
  await connection.getByLabel("password", { exact: true }).fill(wrong.password);
  await connection.getByRole("button", { name: "Test connection" }).click();
  await expect(connection.getByTestId("test-result")).toHaveText(`Failed (${expectedFailure.kind}): ${expectedFailure.message}`);
  // Then the demo's core-banking SQLite database: the test passes, the connection is saved
  // and chosen for the job.
  await connection.getByLabel("Type", { exact: true }).selectOption("sqlite");
  await connection.getByLabel(/Database file/).fill(server().sqlite);
  await connection.getByRole("button", { name: "Test connection" }).click();
  await expect(connection.getByTestId("test-result")).toContainText("Connected: connected to sqlite");
  await connection.getByRole("button", { name: "Save" }).click();
  await expect(connection).toHaveCount(0);
  await expect(jobForm.getByLabel("Connection")).toHaveValue(/.+/);
  await expect(jobForm.getByLabel("Connection").locator("option:checked")).toHaveText(`core banking ${suffix} (sqlite)`);
  await jobForm.getByRole("button", { name: "Test connection" }).click();
  await expect(jobForm.getByTestId("db-test-result")).toContainText("Connected: connected to sqlite");

  // The table: searched, then chosen from the list with the keyboard.
  const tables = jobForm.getByLabel("Source table");
  await expect(tables.locator("option")).toHaveCount(3);
  await jobForm.getByLabel("Search tables").fill("acc");
  await expect(tables.locator("option")).toHaveCount(1);
  await tables.focus();
  await page.keyboard.press("ArrowDown");
  await expect(tables).toHaveValue("main.accounts"); // SQLite names its schema main
  await expect(jobForm.getByRole("table", { name: "Source schema" })).toContainText("modified_date");
  const sample = jobForm.getByRole("region", { name: "Sample rows" });
  await expect(sample.locator("tbody tr")).toHaveCount(10);
  await expect(sample.locator("thead")).toContainText("balance");
  await expect(jobForm.getByLabel("Job name")).toHaveValue("Ingest accounts");
  await expect(jobForm.getByLabel("Bronze table")).toHaveValue("bronze_accounts");
  await jobForm.getByLabel("Bronze table").fill(bronzeTable);
  // Incremental: the watermark column from the table's columns.
  await jobForm.getByLabel(/Load incrementally/).check();
  await jobForm.getByLabel("Watermark column").selectOption("modified_date");
  await expectAccessible(page);
  await snap(page, "20-database-job-form", testInfo);
  // The stored-procedure picker says when the database has none (SQLite has none).
  await jobForm.getByRole("radio", { name: "Stored procedure" }).check();
  await expect(jobForm.getByText("This database has no stored procedures FlowForge can call.")).toBeVisible();
  await expect(jobForm.getByLabel(/Load incrementally/)).toBeDisabled();
  await jobForm.getByRole("radio", { name: "Table" }).check();
  await jobForm.getByLabel(/Load incrementally/).check();
  await jobForm.getByLabel("Watermark column").selectOption("modified_date");

  await jobForm.getByRole("button", { name: "Create job" }).click();
  await expect(jobForm).toHaveCount(0);
  await expect(page.getByRole("row", { name: /Ingest accounts/ })).toContainText("sqlite: accounts");
  const saved = await theJob("Ingest accounts");
  expect(saved.sourceConfig.databaseConfig).toMatchObject({ schema: "main", tableName: "accounts", isIncremental: true, deltaColumn: "modified_date" });
  expect(saved.destinationConfig).toEqual({ bronzeConfig: { tableName: bronzeTable } });

  await page.getByRole("button", { name: "Run now" }).click();
  await expect(page).toHaveURL(/\/executions\//);
  await expect(page.getByTestId("execution-status")).toHaveText("succeeded", { timeout: 90_000 });
  await page.goto(`/catalog/${bronzeTable}`);
  await expect(page.getByTestId("row-count")).toHaveText("750");
});

test("an existing job edited: the change is saved with the version read and is there after a reload", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  // Keyboard: Edit is reached with Tab and pressed with Enter; the form opens with focus in it.
  const edit = page.getByRole("button", { name: "Edit Ingest accounts" });
  await edit.focus();
  await page.keyboard.press("Enter");
  const form = page.getByRole("form", { name: "Edit job Ingest accounts" });
  await expect(form.getByLabel("Job name")).toBeFocused();
  await expect(form.getByLabel("Source table")).toHaveValue("main.accounts");
  await expect(form.getByLabel("Watermark column")).toHaveValue("modified_date");
  await form.getByLabel("Write mode").selectOption("overwrite");
  await form.getByLabel("Batch size (rows)").fill("5000");

  // Someone changes the job meanwhile: the save is refused (409) in the API's words, not
  // written over their change.
  const before = await theJob("Ingest accounts");
  const meanwhile = await asAdmin(`/api/workflows/${workflowId}/jobs/${before.id}`, { method: "PATCH", body: JSON.stringify({ description: "changed meanwhile", version: before.version }) });
  expect(meanwhile.status).toBe(200);
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form.getByRole("alert")).toContainText("HTTP 409");
  await form.getByRole("button", { name: "Cancel" }).click();

  // Opened again, it shows their change; this save goes through.
  await page.getByRole("button", { name: "Edit Ingest accounts" }).click();
  await expect(form.getByLabel("Description")).toHaveValue("changed meanwhile");
  await form.getByLabel("Write mode").selectOption("overwrite");
  await form.getByLabel("Batch size (rows)").fill("5000");
  await expectAccessible(page);
  await snap(page, "21-database-job-edit", testInfo);
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form).toHaveCount(0);

  await page.reload();
  await page.getByRole("button", { name: "Edit Ingest accounts" }).click();
  await expect(form.getByLabel("Write mode")).toHaveValue("overwrite");
  await expect(form.getByLabel("Batch size (rows)")).toHaveValue("5000");
  await expect(form.getByLabel("Description")).toHaveValue("changed meanwhile");
  const after = await theJob("Ingest accounts");
  expect(after.destinationConfig.bronzeConfig).toEqual({ tableName: bronzeTable, writeMode: "overwrite" });
  expect(after.sourceConfig.databaseConfig.batchSize).toBe(5000);
  expect(after.version).toBe(before.version + 2);

  // A custom query in the SQL editor (CodeMirror, loaded when first shown), saved and read back.
  await form.getByRole("radio", { name: "Custom query" }).check();
  const editor = form.getByRole("textbox", { name: "Custom query (read-only: one SELECT)" });
  await editor.click();
  await page.keyboard.type("SELECT account_id, balance, modified_date FROM accounts");
  // SQL highlighting: keywords are marked up (plain text is not wrapped in a span).
  await expect(form.locator(".cm-line span", { hasText: /^SELECT$/ })).toBeVisible();
  await expect(form.locator(".cm-line span", { hasText: /^FROM$/ })).toBeVisible();
  await expectAccessible(page);
  await snap(page, "22-database-job-query", testInfo);
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole("row", { name: /Ingest accounts/ })).toContainText("sqlite: custom query");
  await page.getByRole("button", { name: "Edit Ingest accounts" }).click();
  await expect(form.getByRole("textbox", { name: "Custom query (read-only: one SELECT)" })).toHaveText("SELECT account_id, balance, modified_date FROM accounts");
  const queried = await theJob("Ingest accounts");
  expect(queried.sourceConfig.databaseConfig.query).toBe("SELECT account_id, balance, modified_date FROM accounts");
  expect(queried.sourceConfig.databaseConfig.tableName).toBeUndefined();
  // A query that writes is refused on save, the API's message at the editor.
  await editor.click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.type("DELETE FROM accounts");
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form.getByTestId("db-query-problems")).not.toBeEmpty();
  await form.getByRole("button", { name: "Cancel" }).click();
});

test("a silver job: a bad derived-column expression shows the API's message next to the field before saving", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  await page.getByRole("button", { name: "Add a silver job" }).click();
  const form = page.getByRole("form", { name: "New silver job" });
  await form.getByLabel("Job name").fill("Silver accounts");
  await form.getByRole("checkbox", { name: bronzeTable }).check();
  await form.getByLabel("Silver table").fill(`silver_accounts_${suffix}`);
  await form.getByLabel("Merge key (columns, comma-separated)").fill("account_id");
  await form.getByLabel("Surrogate key column (optional)").fill("account_sk");
  await form.getByRole("button", { name: "Add a derived column" }).click();
  await form.getByLabel("Name of derived column 1").fill("balance_x2");

  // The bronze table has run, so its columns are known: an unknown one is refused as typed,
  // with the message the API gives (asked the same way here).
  const expression = form.getByLabel("Expression of derived column 1 (SQL)");
  const check = form.getByTestId("derived-0-expression-check");
  const columns = (await asAdmin(`/api/catalog/assets/${bronzeTable}`).then((r) => r.json())).columns.map((c: { name: string }) => c.name);
  const expected = await asAdmin("/api/validate/expression", { method: "POST", body: JSON.stringify({ expression: "balance * rate", columns }) }).then((r) => r.json());
  await expression.fill("balance * rate");
  await expect(check).toHaveText(expected.detail[0].msg);
  await expect(check).toContainText("unknown column rate");
  await expect(expression).toHaveAttribute("aria-invalid", "true");
  await expression.fill("(SELECT 1)");
  await expect(check).toContainText("subqueries (SELECT ...) are not allowed");
  await expectAccessible(page);
  await snap(page, "23-silver-job-bad-expression", testInfo);
  await expression.fill("balance * 2");
  await expect(check).toHaveText("valid; reads balance");
  await expect(expression).toHaveAttribute("aria-invalid", "false");
  await form.getByRole("button", { name: "Create job" }).click();
  await expect(form).toHaveCount(0);
  await expect(page.getByRole("row", { name: /Silver accounts/ })).toContainText(`silver_accounts_${suffix}`);
  const silver = await theJob("Silver accounts");
  expect(silver.destinationConfig).toEqual({ silverConfig: { tableName: `silver_accounts_${suffix}`, primaryKey: "account_id", surrogateKey: "account_sk" } });
  expect(silver.transformationConfig).toEqual({ derivedColumns: [{ name: "balance_x2", expression: "balance * 2" }] });

  // The gold form: aggregations and joins; a groupBy without aggregation is the API's 422 at the field.
  await page.getByRole("button", { name: "Add a gold job" }).click();
  const gold = page.getByRole("form", { name: "New gold job" });
  await gold.getByLabel("Job name").fill("Gold balances");
  await gold.getByRole("checkbox", { name: `silver_accounts_${suffix}` }).check();
  await gold.getByLabel("Gold table").fill(`gold_balances_${suffix}`);
  await gold.getByLabel("Group by (columns, comma-separated)").fill("account_type");
  await gold.getByRole("button", { name: "Create job" }).click();
  await expect(gold.getByTestId("group-by-problems")).toContainText("groupBy needs at least one aggregation");
  await gold.getByRole("button", { name: "Add an aggregation" }).click();
  await gold.getByLabel("Column 1 (or *)").fill("balance");
  await gold.getByLabel("Result column 1").fill("total_balance");
  await expectAccessible(page);
  await snap(page, "24-gold-job-form", testInfo);
  await gold.getByRole("button", { name: "Create job" }).click();
  await expect(gold).toHaveCount(0);
  const built = await theJob("Gold balances");
  expect(built.transformationConfig).toEqual({ aggregations: [{ column: "balance", function: "SUM", alias: "total_balance" }], groupBy: ["account_type"] });
});

test("a CSV job edited: a column's type changed and the bronze write mode, both there after a reload", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  const { baseURL, adminToken } = server();
  const upload = new FormData();
  upload.append("file", new Blob(["branch,amount,opened\nB1,12.50,2024-01-02\nB2,7.25,2024-02-03\n"], { type: "text/csv" }), `branches_${suffix}.csv`);
  const file = await fetch(`${baseURL}/api/files`, { method: "POST", headers: { Authorization: `Bearer ${adminToken}` }, body: upload });
  expect(file.status).toBe(201);
  const job = { name: "Ingest branches", type: "file-based", sourceConfig: { type: "csv", fileConfig: { fileId: (await file.json()).id } }, destinationConfig: { bronzeConfig: { tableName: `bronze_branches_${suffix}` } } };
  expect((await asAdmin(`/api/workflows/${workflowId}/jobs`, { method: "POST", body: JSON.stringify(job) })).status).toBe(201);

  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  await page.getByRole("button", { name: "Edit Ingest branches" }).click();
  const form = page.getByRole("form", { name: "Edit job Ingest branches" });
  const amount = form.getByLabel("Type of amount");
  await expect(amount).not.toHaveValue("string");
  await amount.selectOption("string");
  await form.getByLabel("New name of opened").fill("opened_on");
  await form.getByLabel("Write mode").selectOption("overwrite");
  await expectAccessible(page);
  await snap(page, "25-csv-job-edit", testInfo);
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form).toHaveCount(0);
  await page.reload();
  await page.getByRole("button", { name: "Edit Ingest branches" }).click();
  await expect(form.getByLabel("Type of amount")).toHaveValue("string");
  await expect(form.getByLabel("New name of opened")).toHaveValue("opened_on");
  await expect(form.getByLabel("Write mode")).toHaveValue("overwrite");
  const saved = await theJob("Ingest branches");
  const columns = Object.fromEntries(saved.sourceConfig.fileConfig.columns.map((c: { name: string }) => [c.name, c]));
  expect(columns.amount.type).toBe("string");
  expect(columns.opened.rename).toBe("opened_on");
  expect(saved.destinationConfig.bronzeConfig.writeMode).toBe("overwrite");
  // A name the API refuses is said next to the column, in its words.
  await form.getByLabel("New name of branch").fill("not a name");
  await form.getByRole("button", { name: "Save changes" }).click();
  await expect(form.locator("#column-0-problems")).toContainText("String should match pattern");
});

test("a viewer sees the jobs but no way to add or edit one", async ({ page }) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  await signIn(page, await createToken("viewer"), "viewer");
  await page.goto(`${workflowUrl}?tab=jobs`);
  await expect(page.getByRole("row", { name: /Ingest accounts/ })).toBeVisible();
  await expect(page.getByRole("button", { name: /^Add a|^Edit / })).toHaveCount(0);
});

test("a PostgreSQL stored procedure: picked from the list, its parameters typed, saved as numbers, dates and booleans, run", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  // A database of its own on the machine's PostgreSQL, with a set-returning function.
  const python = process.env.FLOWFORGE_PYTHON || join(ROOT, ".venv/bin/python");
  const database = execFileSync(python, [join(WEB, "e2e/pg_source.py"), "create"]).toString().trim();
  try {
    const connection = await asAdmin("/api/connections", {
      method: "POST",
      body: JSON.stringify({ name: `branches pg ${suffix}`, type: "postgresql", host: "127.0.0.1", port: 5432, database, username: "postgres", password: "unused-trust" }),
    });
    expect(connection.status).toBe(201);
    await signIn(page, await createToken("editor"), "editor");
    await page.goto(`${workflowUrl}?tab=jobs`);
    await page.getByRole("button", { name: "Add a database job" }).click();
    const form = page.getByRole("form", { name: "New database job" });
    await form.getByLabel("Connection").selectOption({ label: `branches pg ${suffix} (postgresql)` });
    await form.getByRole("button", { name: "Test connection" }).click();
    await expect(form.getByTestId("db-test-result")).toContainText("Connected: connected to postgresql");
    await form.getByRole("radio", { name: "Stored procedure" }).check();
    await form.getByRole("combobox", { name: "Procedure", exact: true }).selectOption("public.branches_since");
    const since = form.getByLabel(/^since/);
    const minBalance = form.getByLabel(/^min_balance/);
    const activeOnly = form.getByLabel(/^active_only/);
    await expect(since).toHaveAttribute("type", "date");
    await expect(minBalance).toHaveAttribute("type", "number");
    await expect(activeOnly.locator("option")).toHaveText(["null", "true", "false"]);
    await since.fill("2024-01-10");
    await minBalance.fill("100.5");
    await activeOnly.selectOption("true");
    await form.getByLabel("Job name").fill("Ingest branches since");
    await form.getByLabel("Bronze table").fill(`bronze_branches_since_${suffix}`);
    await expectAccessible(page);
    await snap(page, "26-database-job-procedure", testInfo);
    await form.getByRole("button", { name: "Create job" }).click();
    await expect(form).toHaveCount(0);
    await expect(page.getByRole("row", { name: /Ingest branches since/ })).toContainText("postgresql: public.branches_since");
    const saved = await theJob("Ingest branches since");
    expect(saved.sourceConfig.databaseConfig).toMatchObject({ storedProcedure: "public.branches_since", parameters: { since: "2024-01-10", min_balance: 100.5, active_only: true } });
    // The whole workflow runs (the procedure called with those values): 21 branches opened
    // since 10 January with 100.50 or more that are active.
    await page.getByRole("button", { name: "Run now" }).click();
    await expect(page).toHaveURL(/\/executions\//);
    await expect(page.getByTestId("execution-status")).toHaveText("succeeded", { timeout: 90_000 });
    await page.goto(`/catalog/bronze_branches_since_${suffix}`);
    await expect(page.getByTestId("row-count")).toHaveText("21");
  } finally {
    execFileSync(python, [join(WEB, "e2e/pg_source.py"), "drop", database]);
  }
});

test("the order of jobs: a job set to run after another says so; a choice that closes a cycle is refused in the API's words and nothing changes; the order cleared again", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  const gold = await theJob("Gold balances");
  const branches = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "Ingest branches", exact: true }) });
  const runsAfterCell = branches.getByTestId("runs-after");
  await expect(runsAfterCell).toHaveText("—");
  await page.getByRole("button", { name: "Choose what Ingest branches runs after" }).click();
  const order = page.getByRole("group", { name: "Ingest branches runs after" });
  await order.getByLabel("Gold balances", { exact: true }).check();
  await order.getByRole("button", { name: "Save order" }).click();
  await expect(order).toHaveCount(0);
  await expect(runsAfterCell).toHaveText("Gold balances");
  expect((await theJob("Ingest branches")).dependsOn).toEqual([gold.id]);

  // Ingest branches now waits for Gold balances: making Gold balances wait for it too is a loop.
  await page.getByRole("button", { name: "Choose what Gold balances runs after" }).click();
  const goldOrder = page.getByRole("group", { name: "Gold balances runs after" });
  await goldOrder.getByLabel("Ingest branches", { exact: true }).check();
  await goldOrder.getByRole("button", { name: "Save order" }).click();
  await expect(goldOrder.getByRole("alert")).toContainText("would close a dependency cycle");
  await expectAccessible(page);
  await snap(page, "28-job-order-cycle", testInfo);
  await goldOrder.getByRole("button", { name: "Cancel" }).click();
  const unchanged = await theJob("Gold balances");
  expect([unchanged.version, unchanged.dependsOn ?? []]).toEqual([gold.version, gold.dependsOn ?? []]);

  await page.getByRole("button", { name: "Choose what Ingest branches runs after" }).click();
  await order.getByLabel("Gold balances", { exact: true }).uncheck();
  await order.getByRole("button", { name: "Save order" }).click();
  await expect(order).toHaveCount(0);
  await expect(runsAfterCell).toHaveText("—");
  expect((await theJob("Ingest branches")).dependsOn ?? []).toEqual([]);
});

test("a job deleted from the jobs tab: Keep keeps it; one whose table others read is named in the API's 409 and deleted anyway", async ({ page }, testInfo) => {
  expect(workflowId, "the first test made the workflow").not.toBe("");
  await signIn(page, await createToken("editor"), "editor");
  await page.goto(`${workflowUrl}?tab=jobs`);
  const ingest = page.getByRole("row", { name: /Ingest accounts/ });
  await ingest.getByRole("button", { name: "Delete Ingest accounts" }).click();
  await ingest.getByRole("button", { name: "Keep" }).click();
  await expect(ingest.getByRole("button", { name: "Delete Ingest accounts" })).toBeVisible();

  // The silver job reads its bronze table: the API refuses and says so; the editor goes ahead.
  await ingest.getByRole("button", { name: "Delete Ingest accounts" }).click();
  const confirm = ingest.getByRole("group", { name: "Confirm deleting Ingest accounts" });
  await confirm.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(ingest.getByRole("alert")).toContainText("other jobs read");
  await expect(ingest.getByRole("alert")).toContainText("Silver accounts");
  await expectAccessible(page);
  await snap(page, "27-job-delete-readers", testInfo);
  await confirm.getByRole("button", { name: "Delete anyway" }).click();
  await expect(page.getByRole("row", { name: /Ingest accounts/ })).toHaveCount(0);
  expect(await theJob("Ingest accounts")).toBeUndefined();
  await expect(page.getByRole("row", { name: /Silver accounts/ })).toBeVisible();
});
