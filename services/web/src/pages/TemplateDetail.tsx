import { lazy, Suspense, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, problemsByField, problemsFor, unwrap } from "../api/client";
import { canEdit, useMe } from "../auth";
import { readParameters } from "../templates";
import { plannedJob } from "../lineage";

const PlannedGraph = lazy(() => import("../components/LineageGraph").then((m) => ({ default: m.PlannedGraph })));
import { buttonClass, ErrorBox, inputClass, Loading, PageTitle, secondaryButtonClass } from "../ui";

type ConnectionMode = "existing" | "new";
interface ConnectionForm {
  mode: ConnectionMode;
  connectionId: string;
  name: string;
  type: string;
  host: string;
  port: string;
  database: string;
  username: string;
  password: string;
}

function FieldProblems({ messages, id }: { messages: string[]; id: string }) {
  if (!messages.length) return null;
  return (
    <ul id={id} className="mt-1 text-sm text-red-800" data-testid="field-problems">
      {messages.map((message) => (
        <li key={message}>{message}</li>
      ))}
    </ul>
  );
}

export default function TemplateDetail() {
  const { id = "" } = useParams();
  const me = useMe();
  const template = useQuery({
    queryKey: ["template", id],
    queryFn: () => unwrap(api.GET("/api/templates/{template_id}", { params: { path: { template_id: id } } })),
  });
  const [wizard, setWizard] = useState(false);

  if (template.isLoading) return <Loading what="the template" />;
  if (template.error || !template.data) return <ErrorBox error={template.error} />;
  const t = template.data;

  return (
    <div>
      <p className="mb-2 text-sm">
        <Link to="/templates" className="text-indigo-800 underline">Template gallery</Link>
      </p>
      <PageTitle
        actions={
          canEdit(me.data?.role) && !wizard ? (
            <button type="button" className={buttonClass} onClick={() => setWizard(true)}>
              Use this template
            </button>
          ) : null
        }
      >
        {t.name}
      </PageTitle>
      <p className="mb-1 text-sm uppercase tracking-wide text-slate-700">
        {[t.industryVertical, t.category, t.useCase].filter(Boolean).join(" · ")} · version {t.templateVersion}
      </p>
      <p className="mb-4 max-w-3xl">{t.description}</p>
      {wizard ? <InstantiateWizard templateId={t.id} parametersRaw={t.parameters} defaultName={String((t.workflow as { name?: string }).name ?? t.name)} tables={t.jobs.map((job) => job.writes).filter((x): x is string => Boolean(x))} onCancel={() => setWizard(false)} /> : null}
      <h2 className="mb-2 mt-6 text-lg font-semibold">The job graph</h2>
      <Suspense fallback={<Loading what="the job graph" />}>
        <PlannedGraph jobs={t.jobs.map((job) => ({ ...plannedJob(job.name, job.config as never), reads: job.reads, writes: job.writes ?? null }))} />
      </Suspense>
      <h2 className="mb-2 mt-6 text-lg font-semibold">The {t.jobs.length} jobs it creates</h2>
      <table className="w-full max-w-4xl border-collapse bg-white text-sm">
        <thead>
          <tr className="border-b border-slate-300 text-left">
            <th className="p-2">Job</th>
            <th className="p-2">Type</th>
            <th className="p-2">Reads</th>
            <th className="p-2">Writes</th>
          </tr>
        </thead>
        <tbody>
          {t.jobs.map((job) => (
            <tr key={job.key} className="border-b border-slate-200">
              <td className="p-2">{job.name}</td>
              <td className="p-2">{job.type}</td>
              <td className="p-2">{job.reads.join(", ") || "—"}</td>
              <td className="p-2 font-mono">{job.writes ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function InstantiateWizard({
  templateId,
  parametersRaw,
  defaultName,
  tables,
  onCancel,
}: {
  templateId: string;
  parametersRaw: unknown;
  defaultName: string;
  tables: string[];
  onCancel: () => void;
}) {
  const parameters = readParameters(parametersRaw);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [step, setStep] = useState(1);
  const [workflowName, setWorkflowName] = useState(defaultName);
  const [connections, setConnections] = useState<Record<string, ConnectionForm>>(() =>
    Object.fromEntries(
      parameters.connections.map((c) => [
        c.key,
        { mode: "new", connectionId: "", name: "", type: c.defaultType ?? c.types?.[0] ?? "postgresql", host: "", port: "", database: "", username: "", password: "" },
      ]),
    ),
  );
  const [files, setFiles] = useState<Record<string, File | null>>({});
  const [renames, setRenames] = useState<Record<string, string>>({});
  const [uploadProgress, setUploadProgress] = useState<string | null>(null);
  const saved = useQuery({
    queryKey: ["connections"],
    queryFn: () => unwrap(api.GET("/api/connections", {})),
  });

  const instantiate = useMutation({
    mutationFn: async () => {
      const fileChoices: Record<string, { fileId: string }> = {};
      for (const spec of parameters.files) {
        const file = files[spec.key];
        if (!file) continue; // the API names the missing file next to its field
        setUploadProgress(`Uploading ${file.name}…`);
        const form = new FormData();
        form.append("file", file);
        const uploaded = await unwrap(
          api.POST("/api/files", {
            body: form as never,
            bodySerializer: (body: unknown) => body as FormData,
          }),
        );
        fileChoices[spec.key] = { fileId: uploaded.id };
      }
      setUploadProgress("Creating the workflow and its jobs…");
      const connectionChoices = Object.fromEntries(
        Object.entries(connections).map(([key, c]) => [
          key,
          c.mode === "existing"
            ? { connectionId: c.connectionId }
            : {
                name: c.name || undefined,
                connection: {
                  type: c.type,
                  host: c.host || undefined,
                  port: c.port ? Number(c.port) : undefined,
                  database: c.database || undefined,
                  username: c.username || undefined,
                  password: c.password || undefined,
                },
              },
        ]),
      );
      const tableNames = Object.fromEntries(Object.entries(renames).filter(([, value]) => value.trim()));
      return unwrap(
        api.POST("/api/templates/{template_id}/instantiate", {
          params: { path: { template_id: templateId } },
          body: { workflowName, connections: connectionChoices, files: fileChoices, tableNames } as never,
        }),
      );
    },
    onSettled: () => setUploadProgress(null),
    onSuccess: (workflow) => {
      queryClient.invalidateQueries({ queryKey: ["workflows"] });
      const created = workflow as { id: string };
      navigate(`/workflows/${created.id}`);
    },
  });

  const problems = instantiate.error instanceof ApiError ? problemsByField(instantiate.error.problems) : {};
  const shownFields = new Set<string>();
  const problemsAt = (field: string) => {
    shownFields.add(field);
    return problemsFor(problems, field);
  };

  function update(key: string, change: Partial<ConnectionForm>) {
    setConnections((current) => ({ ...current, [key]: { ...current[key], ...change } }));
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    if (step < 3) setStep(step + 1);
    else instantiate.mutate();
  }

  const nameProblems = problemsAt("workflowName");
  const stepTitles = ["Name", "Sources", "Tables"];
  const connectionFields = parameters.connections.map((spec) => `connections.${spec.key}`);
  const fileFields = parameters.files.map((spec) => `files.${spec.key}`);
  const sourcesHaveProblems = [...connectionFields, ...fileFields].some((f) => problemsFor(problems, f).length);

  const form = (
    <form onSubmit={submit} className="mb-6 max-w-3xl rounded-lg border border-indigo-300 bg-white p-5" aria-label="Instantiate the template">
      <h2 className="mb-1 text-lg font-semibold">Create a workflow from this template</h2>
      <ol className="mb-4 flex gap-4 text-sm" aria-label="Steps">
        {stepTitles.map((title, index) => (
          <li key={title} aria-current={step === index + 1 ? "step" : undefined} className={step === index + 1 ? "font-semibold text-indigo-800" : "text-slate-700"}>
            <button type="button" className="underline-offset-2 hover:underline" onClick={() => setStep(index + 1)}>
              {index + 1}. {title}
            </button>
          </li>
        ))}
      </ol>
      <div hidden={step !== 1}>
        <label htmlFor="workflowName" className="block text-sm font-medium">Workflow name</label>
        <input id="workflowName" className={inputClass} value={workflowName} onChange={(e) => setWorkflowName(e.target.value)} aria-invalid={nameProblems.length > 0} aria-describedby="workflowName-problems" />
        <FieldProblems messages={nameProblems} id="workflowName-problems" />
      </div>
      <div hidden={step !== 2}>
        {parameters.connections.map((spec) => {
          const c = connections[spec.key];
          const field = `connections.${spec.key}`;
          const messages = problemsAt(field);
          return (
            <fieldset key={spec.key} className="mb-4 rounded border border-slate-300 p-3" aria-describedby={`${spec.key}-problems`}>
              <legend className="px-1 text-sm font-semibold">Database connection “{spec.key}”</legend>
              <p className="mb-2 text-sm text-slate-700">{spec.description}</p>
              <div className="mb-2 flex gap-4 text-sm">
                <label><input type="radio" name={`${spec.key}-mode`} checked={c.mode === "new"} onChange={() => update(spec.key, { mode: "new" })} /> New connection</label>
                <label><input type="radio" name={`${spec.key}-mode`} checked={c.mode === "existing"} onChange={() => update(spec.key, { mode: "existing" })} /> A saved connection</label>
              </div>
              {c.mode === "existing" ? (
                <div>
                  <label htmlFor={`${spec.key}-id`} className="block text-sm font-medium">Saved connection</label>
                  <select id={`${spec.key}-id`} className={inputClass} value={c.connectionId} onChange={(e) => update(spec.key, { connectionId: e.target.value })}>
                    <option value="">Choose…</option>
                    {(saved.data?.data ?? []).map((conn) => (
                      <option key={conn.id} value={conn.id}>{conn.name} ({conn.type})</option>
                    ))}
                  </select>
                </div>
              ) : (
                <div className="grid grid-cols-2 gap-2">
                  <div>
                    <label htmlFor={`${spec.key}-type`} className="block text-sm font-medium">Type</label>
                    <select id={`${spec.key}-type`} className={inputClass} value={c.type} onChange={(e) => update(spec.key, { type: e.target.value })}>
                      {(spec.types ?? []).map((type) => <option key={type}>{type}</option>)}
                    </select>
                  </div>
                  <div>
                    <label htmlFor={`${spec.key}-name`} className="block text-sm font-medium">Connection name</label>
                    <input id={`${spec.key}-name`} className={inputClass} value={c.name} onChange={(e) => update(spec.key, { name: e.target.value })} />
                  </div>
                  {c.type !== "sqlite" ? (
                    <>
                      <div>
                        <label htmlFor={`${spec.key}-host`} className="block text-sm font-medium">Host</label>
                        <input id={`${spec.key}-host`} className={inputClass} value={c.host} onChange={(e) => update(spec.key, { host: e.target.value })} />
                      </div>
                      <div>
                        <label htmlFor={`${spec.key}-port`} className="block text-sm font-medium">Port</label>
                        <input id={`${spec.key}-port`} inputMode="numeric" className={inputClass} value={c.port} onChange={(e) => update(spec.key, { port: e.target.value })} />
                      </div>
                      <div>
                        <label htmlFor={`${spec.key}-username`} className="block text-sm font-medium">User</label>
                        <input id={`${spec.key}-username`} className={inputClass} value={c.username} onChange={(e) => update(spec.key, { username: e.target.value })} />
                      </div>
                      <div>
                        <label htmlFor={`${spec.key}-password`} className="block text-sm font-medium">Password</label>
                        <input id={`${spec.key}-password`} type="password" autoComplete="new-password" className={inputClass} value={c.password} onChange={(e) => update(spec.key, { password: e.target.value })} />
                      </div>
                    </>
                  ) : null}
                  <div>
                    <label htmlFor={`${spec.key}-database`} className="block text-sm font-medium">{c.type === "sqlite" ? "Database file (in the server's sources folder)" : "Database"}</label>
                    <input id={`${spec.key}-database`} className={inputClass} value={c.database} onChange={(e) => update(spec.key, { database: e.target.value })} />
                  </div>
                </div>
              )}
              <FieldProblems messages={messages} id={`${spec.key}-problems`} />
            </fieldset>
          );
        })}
        {parameters.files.map((spec) => {
          const messages = problemsAt(`files.${spec.key}`);
          return (
            <div key={spec.key} className="mb-4 rounded border border-slate-300 p-3">
              <label htmlFor={`file-${spec.key}`} className="block text-sm font-semibold">CSV file “{spec.key}”</label>
              <p className="mb-2 text-sm text-slate-700">{spec.description}</p>
              <input id={`file-${spec.key}`} type="file" accept=".csv,text/csv" onChange={(e) => setFiles((current) => ({ ...current, [spec.key]: e.target.files?.[0] ?? null }))} aria-describedby={`file-${spec.key}-problems`} />
              <FieldProblems messages={messages} id={`file-${spec.key}-problems`} />
            </div>
          );
        })}
      </div>
      <div hidden={step !== 3}>
        <p className="mb-2 text-sm text-slate-700">The tables it writes; give another name to install the template a second time.</p>
        <div className="grid grid-cols-2 gap-2">
          {tables.map((table) => {
            const messages = problemsAt(`tableNames.${table}`);
            return (
              <div key={table}>
                <label htmlFor={`rename-${table}`} className="block font-mono text-sm">{table}</label>
                <input id={`rename-${table}`} className={inputClass} placeholder={table} value={renames[table] ?? ""} onChange={(e) => setRenames((current) => ({ ...current, [table]: e.target.value }))} />
                <FieldProblems messages={messages} id={`rename-${table}-problems`} />
              </div>
            );
          })}
        </div>
      </div>
      {instantiate.isError ? (
        <div role="alert" className="mt-3 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-900">
          <p className="font-semibold">The template was not instantiated: {instantiate.error instanceof ApiError && instantiate.error.problems.length ? "fix the fields marked below" : instantiate.error.message}</p>
          {sourcesHaveProblems && step !== 2 ? <p>Some problems concern the sources (step 2).</p> : null}
          <ul className="mt-1 list-disc pl-5">
            {Object.entries(problems)
              .filter(([field]) => ![...shownFields].some((shown) => field === shown || field.startsWith(`${shown}.`)) || step === 3)
              .map(([field, messages]) => (
                <li key={field}>{field ? `${field}: ` : ""}{messages.join("; ")}</li>
              ))}
          </ul>
        </div>
      ) : null}
      {uploadProgress ? <p role="status" className="mt-3 text-sm">{uploadProgress}</p> : null}
      <div className="mt-4 flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={onCancel}>Cancel</button>
        {step > 1 ? <button type="button" className={secondaryButtonClass} onClick={() => setStep(step - 1)}>Back</button> : null}
        <button type="submit" className={buttonClass} disabled={instantiate.isPending}>
          {step < 3 ? "Next" : instantiate.isPending ? "Creating…" : "Create workflow"}
        </button>
      </div>
    </form>
  );
  return form;
}
