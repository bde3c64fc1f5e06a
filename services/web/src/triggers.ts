/** Triggers in the UI: a kind's settings as form values and back (docs/triggers.md), kept apart
 * from the page so they are unit-tested. */

export const KINDS = ["manual", "cron", "webhook", "dependency", "event"] as const;
export type Kind = (typeof KINDS)[number];

export const CONCURRENCY = ["skip", "queue", "allow"] as const;
export const MISFIRE = ["skip", "run_once", "catch_up"] as const;
export const MODES = ["all", "any"] as const;
export const UPSTREAM_STATUS = ["succeeded", "failed", "cancelled", "ended"] as const;

/** The form's values: text as typed, checkboxes as booleans, the upstream workflows as ids. */
export interface TriggerForm {
  name: string;
  enabled: boolean;
  kind: Kind;
  expression: string;
  timezone: string;
  misfire: string;
  maxCatchUp: string;
  concurrency: string;
  upstream: string[];
  mode: string;
  status: string;
  windowMinutes: string;
  prefix: string;
  pattern: string;
  recursive: boolean;
  jobId: string;
  includeExisting: boolean;
  settleSeconds: string;
  pollSeconds: string;
}

/** The API's defaults, so a new form shows what the server would otherwise choose. */
export function emptyForm(kind: Kind = "cron"): TriggerForm {
  return {
    name: "",
    enabled: true,
    kind,
    expression: "0 6 * * *",
    timezone: "UTC",
    misfire: "skip",
    maxCatchUp: "10",
    concurrency: kind === "event" ? "queue" : "skip",
    upstream: [],
    mode: "all",
    status: "succeeded",
    windowMinutes: "",
    prefix: "incoming/",
    pattern: "*.csv",
    recursive: false,
    jobId: "",
    includeExisting: false,
    settleSeconds: "10",
    pollSeconds: "5",
  };
}

function text(value: unknown, fallback: string): string {
  return value === undefined || value === null ? fallback : String(value);
}

/** The form for an existing trigger, from what the API reads back. */
export function formFromTrigger(trigger: { kind: string; name: string | null; enabled: boolean; settings: Record<string, unknown> }): TriggerForm {
  const kind = (KINDS as readonly string[]).includes(trigger.kind) ? (trigger.kind as Kind) : "manual";
  const base = emptyForm(kind);
  const s = trigger.settings;
  return {
    ...base,
    name: trigger.name ?? "",
    enabled: trigger.enabled,
    expression: text(s.expression, base.expression),
    timezone: text(s.timezone, base.timezone),
    misfire: text(s.misfire, base.misfire),
    maxCatchUp: text(s.maxCatchUp, base.maxCatchUp),
    concurrency: text(s.concurrency, base.concurrency),
    upstream: Array.isArray(s.upstream) ? s.upstream.map(String) : [],
    mode: text(s.mode, base.mode),
    status: text(s.status, base.status),
    windowMinutes: text(s.windowMinutes, ""),
    prefix: text(s.prefix, ""),
    pattern: text(s.pattern, base.pattern),
    recursive: Boolean(s.recursive),
    jobId: text(s.jobId, ""),
    includeExisting: Boolean(s.includeExisting),
    settleSeconds: text(s.settleSeconds, base.settleSeconds),
    pollSeconds: text(s.pollSeconds, base.pollSeconds),
  };
}

/** A number as typed; what is not a number is sent as typed so the API's 422 names it. */
function number(value: string): number | string {
  const trimmed = value.trim();
  return trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
}

/** The settings object the API takes for the form's kind (the whole object: PATCH replaces it). */
export function settingsFromForm(form: TriggerForm): Record<string, unknown> {
  switch (form.kind) {
    case "manual":
      return {};
    case "cron":
      return {
        expression: form.expression.trim(),
        timezone: form.timezone.trim() || "UTC",
        misfire: form.misfire,
        ...(form.misfire === "catch_up" ? { maxCatchUp: number(form.maxCatchUp) } : {}),
        concurrency: form.concurrency,
      };
    case "webhook":
      return { concurrency: form.concurrency };
    case "dependency":
      return {
        upstream: form.upstream,
        mode: form.mode,
        status: form.status,
        ...(form.windowMinutes.trim() ? { windowMinutes: number(form.windowMinutes) } : {}),
        concurrency: form.concurrency,
      };
    case "event":
      return {
        prefix: form.prefix.trim(),
        pattern: form.pattern.trim() || "*",
        recursive: form.recursive,
        ...(form.jobId ? { jobId: form.jobId } : {}),
        includeExisting: form.includeExisting,
        settleSeconds: number(form.settleSeconds),
        pollSeconds: number(form.pollSeconds),
        concurrency: form.concurrency,
      };
  }
}

/** One line saying what a trigger does, for the list. */
export function describeTrigger(
  trigger: { kind: string; settings: Record<string, unknown> },
  workflowName: (id: string) => string = (id) => id,
): string {
  const s = trigger.settings;
  switch (trigger.kind) {
    case "manual":
      return "run by hand (Run now)";
    case "cron":
      return `cron ${String(s.expression)} (${String(s.timezone ?? "UTC")})`;
    case "webhook":
      return "a signed POST to its URL";
    case "dependency": {
      const upstream = Array.isArray(s.upstream) ? s.upstream.map((id) => workflowName(String(id))) : [];
      return `after ${s.mode === "any" ? "any of" : "all of"} ${upstream.join(", ")} ${String(s.status ?? "succeeded")}`;
    }
    case "event":
      return `a file ${String(s.pattern ?? "*")} arriving in ${String(s.prefix) || "the landing area"}${s.recursive ? " (and subfolders)" : ""}`;
    default:
      return trigger.kind;
  }
}

/** Where a webhook trigger is called: the API's own origin. */
export function webhookUrl(origin: string, triggerId: string): string {
  return `${origin.replace(/\/$/, "")}/api/hooks/${triggerId}`;
}
