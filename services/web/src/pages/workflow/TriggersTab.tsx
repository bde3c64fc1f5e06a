import { useState, type FormEvent, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, problemsByField, problemsFor, unwrap, type Schemas } from "../../api/client";
import {
  CONCURRENCY,
  describeTrigger,
  emptyForm,
  formFromTrigger,
  KINDS,
  MISFIRE,
  MODES,
  settingsFromForm,
  UPSTREAM_STATUS,
  webhookUrl,
  type Kind,
  type TriggerForm,
} from "../../triggers";
import { buttonClass, ErrorBox, formatDate, inputClass, Loading, secondaryButtonClass } from "../../ui";

type Trigger = Schemas["TriggerPublic"];

/** The words for a 409: someone changed the trigger since this page read it. */
export const STALE_MESSAGE =
  "This trigger was changed by someone else since you opened it. Reload to see their change: your input is kept, and Save after reloading applies it on top of theirs.";

function isStale(error: unknown): boolean {
  return error instanceof ApiError && error.status === 409;
}

const ifMatch = (version: number) => ({ "If-Match": `"${version}"` });

/** The triggers of a workflow: list, create, edit, enable/disable, delete (docs/triggers.md). */
export default function TriggersTab({ id, editor }: { id: string; editor: boolean }) {
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ triggerId: string; secret: string } | null>(null);
  const triggers = useQuery({
    queryKey: ["triggers", id],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}/triggers", { params: { path: { workflow_id: id } } })),
  });
  const workflows = useQuery({
    queryKey: ["workflows"],
    queryFn: () => unwrap(api.GET("/api/workflows", { params: { query: { limit: 200 } } })),
  });
  const names = new Map((workflows.data?.data ?? []).map((w) => [w.id, w.name]));
  const nameOf = (workflowId: string) => names.get(workflowId) ?? workflowId;

  if (triggers.isLoading) return <Loading what="triggers" />;
  if (!triggers.data) return <ErrorBox error={triggers.error} />;
  const list = triggers.data.data;

  return (
    <div>
      <p className="mb-3 max-w-3xl text-sm text-slate-700">
        What starts this workflow's runs besides Run now: a schedule (cron), a signed webhook, other workflows ending (dependency), or a file arriving in the landing area (event).
        A paused workflow's triggers do not fire.
      </p>
      {editor && !adding ? (
        <button type="button" className={`${secondaryButtonClass} mb-3`} onClick={() => setAdding(true)}>Add a trigger</button>
      ) : null}
      {adding ? (
        <TriggerEditor
          workflowId={id}
          onDone={(created) => {
            setAdding(false);
            if (created?.secret) setSecret({ triggerId: created.id, secret: created.secret });
          }}
        />
      ) : null}
      {secret ? <SecretNotice triggerId={secret.triggerId} secret={secret.secret} onClose={() => setSecret(null)} /> : null}
      {!list.length ? <p>No trigger: this workflow runs when someone presses Run now.</p> : null}
      <ul className="space-y-3">
        {list.map((trigger) =>
          editing === trigger.id ? (
            <li key={trigger.id}>
              <TriggerEditor workflowId={id} trigger={trigger} onDone={() => setEditing(null)} />
            </li>
          ) : (
            <TriggerRow
              key={trigger.id}
              trigger={trigger}
              workflowId={id}
              editor={editor}
              describe={describeTrigger(trigger, nameOf)}
              onEdit={() => setEditing(trigger.id)}
              onSecret={(value) => setSecret({ triggerId: trigger.id, secret: value })}
            />
          ),
        )}
      </ul>
    </div>
  );
}

function SecretNotice({ triggerId, secret, onClose }: { triggerId: string; secret: string; onClose: () => void }) {
  return (
    <div role="status" data-testid="webhook-secret" className="mb-3 max-w-3xl rounded border border-amber-300 bg-amber-50 p-3 text-sm">
      <p className="font-medium">Keep this signing secret now: it is shown only this once.</p>
      <p className="mt-1">URL: <code className="break-all">{webhookUrl(window.location.origin, triggerId)}</code></p>
      <p className="mt-1">Secret: <code className="break-all" data-testid="secret-value">{secret}</code></p>
      <p className="mt-1 text-slate-700">Sign each request as docs/triggers.md says (X-FlowForge-Timestamp, X-FlowForge-Signature: sha256=HMAC of "timestamp.body").</p>
      <button type="button" className={`${secondaryButtonClass} mt-2`} onClick={onClose}>I have kept it</button>
    </div>
  );
}

function TriggerRow({
  trigger,
  workflowId,
  editor,
  describe,
  onEdit,
  onSecret,
}: {
  trigger: Trigger;
  workflowId: string;
  editor: boolean;
  describe: string;
  onEdit: () => void;
  onSecret: (secret: string) => void;
}) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const path = { workflow_id: workflowId, trigger_id: trigger.id };
  const refresh = () => {
    queryClient.invalidateQueries({ queryKey: ["triggers", workflowId] });
    queryClient.invalidateQueries({ queryKey: ["workflow", workflowId] });
    queryClient.invalidateQueries({ queryKey: ["workflows"] });
  };
  const toggle = useMutation({
    mutationFn: () =>
      unwrap(api.PATCH("/api/workflows/{workflow_id}/triggers/{trigger_id}", { params: { path }, body: { enabled: !trigger.enabled, version: trigger.version } })),
    onSuccess: refresh,
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/workflows/{workflow_id}/triggers/{trigger_id}", { params: { path }, headers: ifMatch(trigger.version) })),
    onSuccess: refresh,
  });
  const rotate = useMutation({
    mutationFn: () => unwrap(api.POST("/api/workflows/{workflow_id}/triggers/{trigger_id}/rotate-secret", { params: { path } })),
    onSuccess: (answer) => {
      const value = (answer as { secret?: string | null }).secret;
      if (value) onSecret(value);
      refresh();
    },
  });
  const error = toggle.error ?? remove.error ?? rotate.error;
  const label = trigger.name || `${trigger.kind} trigger`;
  return (
    <li className="rounded-lg border border-slate-300 bg-white p-3 text-sm" data-testid="trigger" data-kind={trigger.kind} data-name={trigger.name ?? ""}>
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div>
          <p className="font-medium">
            {label} <span className="ml-1 rounded bg-slate-100 px-1.5 py-0.5 text-xs">{trigger.kind}</span>{" "}
            <span data-testid="trigger-enabled" className={`ml-1 rounded px-1.5 py-0.5 text-xs ${trigger.enabled ? "bg-green-100 text-green-900" : "bg-slate-200 text-slate-800"}`}>
              {trigger.enabled ? "enabled" : "disabled"}
            </span>
          </p>
          <p className="mt-1 text-slate-800" data-testid="trigger-summary">{describe}</p>
          {trigger.disabledReason ? <p className="mt-1 text-amber-900">Disabled by FlowForge: {trigger.disabledReason}</p> : null}
          {trigger.kind === "webhook" ? (
            <p className="mt-1">URL: <code className="break-all" data-testid="webhook-url">{webhookUrl(window.location.origin, trigger.id)}</code> (the secret is shown only when created or rotated)</p>
          ) : null}
          {trigger.nextFireTimes.length ? (
            <div className="mt-1">
              <span className="font-medium">Next runs: </span>
              <ol className="inline" data-testid="next-fire-times">
                {trigger.nextFireTimes.map((time) => (
                  <li key={time.utc} className="mr-3 inline" title={`${time.utc} UTC`}>{time.local}</li>
                ))}
              </ol>
            </div>
          ) : null}
          <p className="mt-1 text-xs text-slate-700">version {trigger.version} · updated {formatDate(trigger.updatedAt)} · created by {trigger.createdBy}</p>
        </div>
        {editor ? (
          <div className="flex flex-wrap gap-2">
            <button type="button" className={secondaryButtonClass} onClick={onEdit} aria-label={`Edit ${label}`}>Edit</button>
            <button type="button" className={secondaryButtonClass} onClick={() => toggle.mutate()} disabled={toggle.isPending} aria-label={`${trigger.enabled ? "Disable" : "Enable"} ${label}`}>
              {trigger.enabled ? "Disable" : "Enable"}
            </button>
            {trigger.kind === "webhook" ? (
              <button type="button" className={secondaryButtonClass} onClick={() => rotate.mutate()} disabled={rotate.isPending}>Rotate secret</button>
            ) : null}
            {confirming ? (
              <span className="flex items-center gap-2" role="group" aria-label="Confirm delete">
                <span>Delete {label}?</span>
                <button type="button" className={buttonClass} onClick={() => remove.mutate()} disabled={remove.isPending}>Delete</button>
                <button type="button" className={secondaryButtonClass} onClick={() => setConfirming(false)}>Keep</button>
              </span>
            ) : (
              <button type="button" className={secondaryButtonClass} onClick={() => setConfirming(true)} aria-label={`Delete ${label}`}>Delete</button>
            )}
          </div>
        ) : null}
      </div>
      {isStale(error) ? (
        <div role="alert" className="mt-2 rounded border border-red-300 bg-red-50 p-2 text-red-900">
          Changed by someone else since this page read it: reload to see the change.{" "}
          <button type="button" className="underline" onClick={() => { toggle.reset(); remove.reset(); refresh(); }}>Reload</button>
        </div>
      ) : (
        <ErrorBox error={error} />
      )}
    </li>
  );
}

function Field({ id, label, problems, children, hint }: { id: string; label: string; problems: string[]; children: ReactNode; hint?: string }) {
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium">{label}</label>
      {children}
      {hint ? <p className="text-xs text-slate-700">{hint}</p> : null}
      {problems.map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
    </div>
  );
}

/** Create a trigger, or edit one: PATCH sends the version the form was opened on, so a change
 * made meanwhile is a 409 shown in words — the form keeps what was typed. */
function TriggerEditor({
  workflowId,
  trigger,
  onDone,
}: {
  workflowId: string;
  trigger?: Trigger;
  onDone: (created?: { id: string; secret?: string | null }) => void;
}) {
  const queryClient = useQueryClient();
  const [form, setForm] = useState<TriggerForm>(() => (trigger ? formFromTrigger(trigger) : emptyForm("cron")));
  const [baseVersion, setBaseVersion] = useState(trigger?.version ?? 0);
  const [theirs, setTheirs] = useState<Trigger | null>(null);
  const set = <K extends keyof TriggerForm>(key: K, value: TriggerForm[K]) => setForm((current) => ({ ...current, [key]: value }));
  const workflows = useQuery({
    queryKey: ["workflows"],
    queryFn: () => unwrap(api.GET("/api/workflows", { params: { query: { limit: 200 } } })),
    enabled: form.kind === "dependency",
  });
  const jobs = useQuery({
    queryKey: ["jobs", workflowId],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}/jobs", { params: { path: { workflow_id: workflowId } } })),
    enabled: form.kind === "event",
  });
  const csvJobs = (jobs.data?.data ?? []).filter((job) => (job.sourceConfig as { type?: string }).type === "csv");
  const done = (created?: { id: string; secret?: string | null }) => {
    queryClient.invalidateQueries({ queryKey: ["triggers", workflowId] });
    queryClient.invalidateQueries({ queryKey: ["workflow", workflowId] });
    queryClient.invalidateQueries({ queryKey: ["workflows"] });
    onDone(created);
  };
  const save = useMutation({
    mutationFn: async () => {
      const body = { name: form.name.trim() || null, enabled: form.enabled, settings: settingsFromForm(form) };
      if (trigger) {
        return unwrap(
          api.PATCH("/api/workflows/{workflow_id}/triggers/{trigger_id}", {
            params: { path: { workflow_id: workflowId, trigger_id: trigger.id } },
            body: { ...body, version: baseVersion },
          }),
        );
      }
      return unwrap(api.POST("/api/workflows/{workflow_id}/triggers", { params: { path: { workflow_id: workflowId } }, body: { ...body, kind: form.kind } }));
    },
    onSuccess: (answer) => done(answer as { id: string; secret?: string | null }),
  });
  const reload = useMutation({
    mutationFn: () =>
      unwrap(api.GET("/api/workflows/{workflow_id}/triggers/{trigger_id}", { params: { path: { workflow_id: workflowId, trigger_id: trigger!.id } } })),
    onSuccess: (current) => {
      // their version becomes the base; what was typed here stays in the form
      setTheirs(current);
      setBaseVersion(current.version);
      save.reset();
      queryClient.invalidateQueries({ queryKey: ["triggers", workflowId] });
    },
  });
  const grouped = save.error instanceof ApiError ? problemsByField(save.error.problems) : {};
  const at = (field: string) => problemsFor(grouped, field);
  const prefix = trigger ? `trigger-${trigger.id}` : "trigger-new";
  const title = trigger ? `Edit trigger ${trigger.name || trigger.kind}` : "New trigger";

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  const select = (key: keyof TriggerForm, label: string, options: readonly string[], hint?: string) => (
    <Field id={`${prefix}-${key}`} label={label} problems={at(`settings.${key}`)} hint={hint}>
      <select id={`${prefix}-${key}`} className={inputClass} value={form[key] as string} onChange={(e) => set(key, e.target.value as never)}>
        {options.map((value) => <option key={value}>{value}</option>)}
      </select>
    </Field>
  );
  const input = (key: keyof TriggerForm, label: string, hint?: string, extra?: { inputMode?: "numeric" }) => (
    <Field id={`${prefix}-${key}`} label={label} problems={at(`settings.${key}`)} hint={hint}>
      <input id={`${prefix}-${key}`} className={inputClass} value={form[key] as string} inputMode={extra?.inputMode} onChange={(e) => set(key, e.target.value as never)} />
    </Field>
  );
  const checkbox = (key: keyof TriggerForm, label: string) => (
    <label className="flex items-center gap-2 text-sm">
      <input type="checkbox" checked={form[key] as boolean} onChange={(e) => set(key, e.target.checked as never)} /> {label}
    </label>
  );

  return (
    <form onSubmit={submit} aria-label={title} className="mb-4 max-w-3xl rounded-lg border border-indigo-300 bg-white p-4">
      <h3 className="mb-3 text-base font-semibold">{title}</h3>
      <div className="grid grid-cols-2 gap-3">
        <Field id={`${prefix}-kind`} label="Kind" problems={at("kind")}>
          <select
            id={`${prefix}-kind`}
            className={inputClass}
            value={form.kind}
            disabled={Boolean(trigger)}
            onChange={(e) => setForm((current) => ({ ...emptyForm(e.target.value as Kind), name: current.name, enabled: current.enabled }))}
          >
            {KINDS.map((value) => <option key={value}>{value}</option>)}
          </select>
        </Field>
        <Field id={`${prefix}-name`} label="Name (optional)" problems={at("name")}>
          <input id={`${prefix}-name`} className={inputClass} value={form.name} onChange={(e) => set("name", e.target.value)} />
        </Field>
        {form.kind === "cron" ? (
          <>
            {input("expression", "Cron expression", "minute hour day month weekday, e.g. 0 6 * * 1-5 (a 6th field is seconds)")}
            {input("timezone", "Time zone", "IANA, e.g. Europe/Paris")}
            {select("misfire", "Missed firings", MISFIRE, "after downtime: skip them, run once, or catch up")}
            {form.misfire === "catch_up" ? input("maxCatchUp", "At most this many catch-up runs", undefined, { inputMode: "numeric" }) : null}
          </>
        ) : null}
        {form.kind === "dependency" ? (
          <>
            <fieldset className="col-span-2">
              <legend className="text-sm font-medium">Runs after these workflows end</legend>
              {workflows.isLoading ? <Loading what="workflows" /> : null}
              <div className="flex max-h-40 flex-wrap gap-x-4 gap-y-1 overflow-auto">
                {(workflows.data?.data ?? []).filter((w) => w.id !== workflowId).map((w) => (
                  <label key={w.id} className="flex items-center gap-1 text-sm">
                    <input
                      type="checkbox"
                      checked={form.upstream.includes(w.id)}
                      onChange={(e) => set("upstream", e.target.checked ? [...form.upstream, w.id] : form.upstream.filter((x) => x !== w.id))}
                    />
                    {w.name}
                  </label>
                ))}
              </div>
              {at("settings.upstream").map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}
            </fieldset>
            {select("mode", "Wait for", MODES, "all: every one of them; any: each ending fires")}
            {select("status", "When they end", UPSTREAM_STATUS)}
            {input("windowMinutes", "Within minutes (optional)", "with all: only endings this recent count", { inputMode: "numeric" })}
          </>
        ) : null}
        {form.kind === "event" ? (
          <>
            {input("prefix", "Folder of the landing area", "relative, e.g. incoming/ — the server's landing folder on disk, or its landing/ prefix on S3")}
            {input("pattern", "File name pattern", "a glob on the name, e.g. *.csv")}
            <Field id={`${prefix}-jobId`} label="CSV job that reads the file" problems={at("settings.jobId")} hint="optional when the workflow has one CSV job">
              <select id={`${prefix}-jobId`} className={inputClass} value={form.jobId} onChange={(e) => set("jobId", e.target.value)}>
                <option value="">(the workflow's only CSV job)</option>
                {csvJobs.map((job) => <option key={job.id} value={job.id}>{job.name}</option>)}
              </select>
            </Field>
            {input("settleSeconds", "Settle seconds", "a file counts once unchanged this long", { inputMode: "numeric" })}
            {input("pollSeconds", "Poll seconds", "list the folder at most this often", { inputMode: "numeric" })}
            <div className="flex flex-col gap-1">
              {checkbox("recursive", "Also subfolders")}
              {checkbox("includeExisting", "Files already there count")}
            </div>
          </>
        ) : null}
        {form.kind !== "manual" ? select("concurrency", "While a run is still going", CONCURRENCY, "skip the firing, queue it, or allow it") : null}
        {form.kind === "webhook" ? (
          <p className="col-span-2 text-sm text-slate-700">
            {trigger ? <>URL: <code className="break-all">{webhookUrl(window.location.origin, trigger.id)}</code></> : "The URL and the signing secret are shown once the trigger is created."}
          </p>
        ) : null}
        <div className="col-span-2">{checkbox("enabled", "Enabled")}</div>
      </div>
      {[...(grouped.settings ?? []), ...(grouped[""] ?? [])].map((m) => <p key={m} className="mt-2 text-sm text-red-800">{m}</p>)}
      {isStale(save.error) ? (
        <div role="alert" data-testid="stale" className="mt-3 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-900">
          <p>{STALE_MESSAGE}</p>
          <p className="mt-1 text-xs">The server said (HTTP 409): {(save.error as ApiError).message}</p>
          <button type="button" className={`${secondaryButtonClass} mt-2`} onClick={() => reload.mutate()} disabled={reload.isPending}>Reload</button>
        </div>
      ) : save.isError && !(save.error instanceof ApiError && save.error.problems.length) ? (
        <ErrorBox error={save.error} />
      ) : null}
      <ErrorBox error={reload.error} />
      {theirs ? (
        <p role="status" className="mt-3 rounded border border-slate-300 bg-slate-50 p-2 text-sm">
          Reloaded: their version {theirs.version} reads <strong>{describeTrigger(theirs)}</strong>{theirs.enabled ? "" : " (disabled)"}. Your input is still in the form; Save applies it.
        </p>
      ) : null}
      <div className="mt-4 flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={() => onDone()}>Cancel</button>
        <button type="submit" className={buttonClass} disabled={save.isPending}>{save.isPending ? "Saving…" : trigger ? "Save" : "Create trigger"}</button>
      </div>
    </form>
  );
}
