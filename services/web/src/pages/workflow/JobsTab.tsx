import { lazy, Suspense, useState } from "react";
import { Link } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, unwrap, type Schemas } from "../../api/client";
import type { JobRead } from "../../jobForm";
import { buttonClass, ErrorBox, Loading, secondaryButtonClass } from "../../ui";
import { JobOrder } from "./JobOrder";

// The forms (and CodeMirror behind the database one) load when first opened.
const CsvJobForm = lazy(() => import("../../components/CsvJobForm").then((m) => ({ default: m.CsvJobForm })));
const DatabaseJobForm = lazy(() => import("../../components/DatabaseJobForm"));
const TransformJobForm = lazy(() => import("../../components/TransformJobForm"));

type Job = Schemas["JobPublic"];
type Adding = "csv" | "database" | "silver" | "gold";

function describeSource(job: Job): string {
  const source = job.sourceConfig as { type: string; tables?: string[]; databaseConfig?: { tableName?: string | null; query?: string | null; storedProcedure?: string | null }; fileConfig?: { fileName?: string | null; filePath?: string | null; fileId?: string | null } };
  if (source.tables) return source.tables.join(", ");
  if (source.databaseConfig) {
    const db = source.databaseConfig;
    return `${source.type}: ${db.tableName ?? db.storedProcedure ?? (db.query ? "custom query" : "?")}`;
  }
  if (source.fileConfig) {
    const file = source.fileConfig;
    return `CSV ${file.fileName ?? file.filePath ?? file.fileId ?? ""}`;
  }
  return source.type;
}

function destinationTable(job: Job): string | null {
  const destination = job.destinationConfig as Record<string, { tableName?: string } | null | undefined>;
  for (const layer of ["bronzeConfig", "silverConfig", "goldConfig"]) {
    const config = destination[layer];
    if (config?.tableName) return config.tableName;
  }
  return null;
}

/** Delete a job after a confirmation, as of the version the list read (a change made meanwhile
 * is a 409). When other jobs read the table it writes, the API's 409 names them and the
 * editor may delete it anyway (`force`); a job named in another's dependsOn cannot go. */
function JobDelete({ workflowId, job, disabled }: { workflowId: string; job: Job; disabled: boolean }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const remove = useMutation({
    mutationFn: (force: boolean) =>
      unwrap(
        api.DELETE("/api/workflows/{workflow_id}/jobs/{job_id}", {
          params: { path: { workflow_id: workflowId, job_id: job.id }, query: force ? { force: true } : {} },
          headers: { "If-Match": `"${job.version}"` },
        }),
      ),
    onSuccess: () => {
      queryClient.invalidateQueries({ queryKey: ["jobs", workflowId] });
      queryClient.invalidateQueries({ queryKey: ["workflow", workflowId] });
    },
  });
  const readers = remove.error instanceof ApiError && remove.error.status === 409 && /other jobs read/.test(remove.error.message);
  if (!confirming) {
    return <button type="button" className={secondaryButtonClass} disabled={disabled} onClick={() => setConfirming(true)} aria-label={`Delete ${job.name}`}>Delete</button>;
  }
  return (
    <div>
      <span role="group" aria-label={`Confirm deleting ${job.name}`} className="flex flex-wrap items-center gap-2">
        <span>Delete it?</span>
        <button type="button" className={buttonClass} disabled={remove.isPending} onClick={() => remove.mutate(readers)}>
          {readers ? "Delete anyway" : "Delete"}
        </button>
        <button type="button" className={secondaryButtonClass} onClick={() => { setConfirming(false); remove.reset(); }}>Keep</button>
      </span>
      <ErrorBox error={remove.error} />
    </div>
  );
}

/** The workflow's jobs; an editor adds one of any source kind, opens one to change it, or
 * changes which jobs it runs after. */
export default function JobsTab({ id, editor }: { id: string; editor: boolean }) {
  const [adding, setAdding] = useState<Adding | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const jobs = useQuery({
    queryKey: ["jobs", id],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}/jobs", { params: { path: { workflow_id: id } } })),
  });
  // The job as it is now (not as the list read it): its version is the one the save sends.
  const current = useQuery({
    queryKey: ["job", id, editing],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}/jobs/{job_id}", { params: { path: { workflow_id: id, job_id: editing ?? "" } } })),
    enabled: editing !== null,
    staleTime: 0,
    gcTime: 0,
  });
  if (jobs.isLoading) return <Loading what="jobs" />;
  if (!jobs.data) return <ErrorBox error={jobs.error} />;
  const close = () => {
    setAdding(null);
    setEditing(null);
  };
  const open = editing && current.data?.id === editing ? (current.data as unknown as JobRead) : undefined;
  const tables = jobs.data.data.map(destinationTable).filter((table): table is string => Boolean(table));
  const busy = adding !== null || editing !== null;
  return (
    <>
      {editor && !busy ? (
        <div className="mb-3 flex flex-wrap gap-2">
          <button type="button" className={secondaryButtonClass} onClick={() => setAdding("csv")}>Add a CSV job</button>
          <button type="button" className={secondaryButtonClass} onClick={() => setAdding("database")}>Add a database job</button>
          <button type="button" className={secondaryButtonClass} onClick={() => setAdding("silver")}>Add a silver job</button>
          <button type="button" className={secondaryButtonClass} onClick={() => setAdding("gold")}>Add a gold job</button>
        </div>
      ) : null}
      {editing && current.isLoading ? <Loading what="the job" /> : null}
      {editing ? <ErrorBox error={current.error} /> : null}
      <Suspense fallback={<Loading what="the form" />}>
        {adding === "csv" ? <CsvJobForm workflowId={id} onDone={close} /> : null}
        {adding === "database" ? <DatabaseJobForm workflowId={id} onDone={close} /> : null}
        {adding === "silver" || adding === "gold" ? <TransformJobForm workflowId={id} layer={adding} tables={tables} onDone={close} /> : null}
        {open ? (
          open.type === "file-based" ? <CsvJobForm key={open.id} workflowId={id} job={open} onDone={close} />
          : open.type === "database" ? <DatabaseJobForm key={open.id} workflowId={id} job={open} onDone={close} />
          : <TransformJobForm key={open.id} workflowId={id} job={open} tables={tables} onDone={close} />
        ) : null}
      </Suspense>
      <table className="w-full border-collapse bg-white text-sm">
        <thead>
          <tr className="border-b border-slate-300 text-left">
            <th className="p-2">#</th>
            <th className="p-2">Job</th>
            <th className="p-2">Type</th>
            <th className="p-2">Reads</th>
            <th className="p-2">Writes</th>
            <th className="p-2">Runs after</th>
            <th className="p-2">Warnings</th>
            {editor ? <th className="p-2"><span className="sr-only">Actions</span></th> : null}
          </tr>
        </thead>
        <tbody>
          {jobs.data.data.map((job) => {
            const table = destinationTable(job);
            return (
              <tr key={job.id} className="border-b border-slate-200">
                <td className="p-2">{job.position + 1}</td>
                <td className="p-2">{job.name}</td>
                <td className="p-2">{job.type}</td>
                <td className="p-2">{describeSource(job)}</td>
                <td className="p-2 font-mono">{table ? <Link to={`/catalog/${table}`} className="text-indigo-800 hover:underline">{table}</Link> : "—"}</td>
                <td className="p-2"><JobOrder workflowId={id} job={job} jobs={jobs.data.data} editor={editor} disabled={busy} /></td>
                <td className="p-2 text-amber-900">{(job.warnings ?? []).map((warning) => `${warning.field}: ${warning.msg}`).join("; ")}</td>
                {editor ? (
                  <td className="p-2">
                    <div className="flex flex-wrap items-start gap-2">
                      <button
                        type="button"
                        className={secondaryButtonClass}
                        aria-label={`Edit ${job.name}`}
                        disabled={busy}
                        onClick={() => {
                          setAdding(null);
                          setEditing(job.id);
                          window.scrollTo({ top: 0 });
                        }}
                      >
                        Edit
                      </button>
                      <JobDelete workflowId={id} job={job} disabled={busy} />
                    </div>
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}
