import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

const TOKEN_KEY = "flowforge.token";

export function getToken(): string | null {
  return window.localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) window.localStorage.setItem(TOKEN_KEY, token);
  else window.localStorage.removeItem(TOKEN_KEY);
}

/** One problem of a 422 answer: where (`field`, e.g. `connections.coreBanking`) and why. */
export interface Problem {
  loc?: (string | number)[];
  field?: string;
  msg: string;
}

/** An error answer of the API, in its own words (`detail`). */
export class ApiError extends Error {
  readonly status: number;
  readonly problems: Problem[];

  constructor(status: number, detail: unknown) {
    const problems = Array.isArray(detail) ? (detail as Problem[]) : [];
    const message =
      typeof detail === "string"
        ? detail
        : problems.length
          ? problems.map((p) => (p.field ? `${p.field}: ${p.msg}` : p.msg)).join("; ")
          : `the server answered HTTP ${status}`;
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** The answer's data, or an ApiError carrying the API's `detail`. */
export async function unwrap<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await pending;
  if (!response.ok) {
    const detail =
      error && typeof error === "object" && "detail" in error
        ? (error as { detail: unknown }).detail
        : undefined;
    throw new ApiError(response.status, detail);
  }
  return data as T;
}

/** Problems of a 422 grouped by the field they concern; `""` holds the rest. */
export function problemsByField(problems: Problem[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const problem of problems) {
    const key = problem.field ?? (problem.loc ? problem.loc.slice(1).join(".") : "");
    (out[key] ??= []).push(problem.msg);
  }
  return out;
}

/** Messages for a field and everything under it (`files.crmCustomers` covers `files.crmCustomers.fileId`). */
export function problemsFor(grouped: Record<string, string[]>, field: string): string[] {
  return Object.entries(grouped)
    .filter(([key]) => key === field || key.startsWith(`${field}.`))
    .flatMap(([, messages]) => messages);
}
