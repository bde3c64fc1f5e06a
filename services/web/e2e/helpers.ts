import AxeBuilder from "@axe-core/playwright";
import { expect, test as base, type Page, type TestInfo } from "@playwright/test";
import { serverState } from "./server";

export const server = () => serverState();

/** Playwright's test, its baseURL the server the global setup started (known only then). */
export const test = base.extend({
  // eslint-disable-next-line no-empty-pattern
  baseURL: async ({}, use) => use(serverState().baseURL),
});
export { expect };

/** A token of the given role, created by the admin through the API (as an admin would). */
export async function createToken(role: "admin" | "editor" | "auditor" | "viewer"): Promise<string> {
  const { baseURL, adminToken } = server();
  const answer = await fetch(`${baseURL}/api/tokens`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: `e2e ${role}`, role }),
  });
  expect(answer.status).toBe(201);
  return (await answer.json()).token;
}

export async function signIn(page: Page, token: string, role: string): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("role")).toHaveText(role);
}

/** A full-page screenshot under the run's artefacts (test-results/screenshots/). */
export async function snap(page: Page, name: string, testInfo: TestInfo): Promise<void> {
  const path = `test-results/screenshots/${name}.png`;
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: "image/png" });
}

/** No serious or critical axe-core violation on the page as it is now. */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`),
    `axe violations on ${page.url()}`,
  ).toEqual([]);
}
