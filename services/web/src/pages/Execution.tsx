import { useEffect } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, getToken, unwrap } from "../api/client";
import { canEdit, useMe } from "../auth";
import { isEnded, parseSse, progress } from "../runs";
import { buttonClass, ErrorBox, formatDate, formatDuration, formatNumber, Loading, PageTitle, secondaryButtonClass, StatusBadge } from "../ui";

/** Follows GET /api/executions/{id}/events (server-sent events, read with fetch so the token
 * goes in the Authorization header) and refreshes the execution on every event. */
function useExecutionEvents(id: string, enabled: boolean, onEvent: () => void) {
  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    (async () => {
      try {
        const response = await fetch(`/api/executions/${id}/events`, {
          headers: { Authorization: `Bearer ${getToken()}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (!response.ok || !response.body) return;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseSse(buffer + value);
          buffer = parsed.rest;
          if (parsed.events.length) onEvent();
        }
        onEvent();
      } catch {
        // aborted or the stream broke: the polling below keeps the page current
      }
    })();
    return () => controller.abort();
  }, [id, enabled, onEvent]);
}

export default function Execution() {
  const { id = "" } = useParams();
  const me = useMe();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const key = ["execution", id];
  const execution = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET("/api/executions/{execution_id}", { params: { path: { execution_id: id } } })),
    // Polling backs the event stream up (a proxy that buffers, a dropped connection).
    refetchInterval: (query) => (isEnded(query.state.data?.status) ? false : 2_000),
  });
  const running = execution.data !== undefined && !isEnded(execution.data.status);
  const refresh = queryClient.invalidateQueries.bind(queryClient, { queryKey: key });
  useExecutionEvents(id, running, refresh as () => void);

  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/api/executions/{execution_id}/cancel", { params: { path: { execution_id: id } } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: key }),
  });
  const rerun = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/workflows/{workflow_id}/run", { params: { path: { workflow_id: execution.data!.workflowId }, query: {} } })),
    onSuccess: (answer) => navigate(`/executions/${(answer as { executionId: string }).executionId}`),
  });

  if (execution.isLoading) return <Loading what="the run" />;
  if (!execution.data) return <ErrorBox error={execution.error} />;
  const e = execution.data;
  const p = progress(e.jobs);
  const editor = canEdit(me.data?.role);

  return (
    <div>
      <p className="mb-2 text-sm">
        <Link to={`/workflows/${e.workflowId}?tab=runs`} className="text-indigo-800 underline">{e.workflowName}</Link>
      </p>
      <PageTitle
        actions={
          editor ? (
            <>
              {running ? (
                <button type="button" className={secondaryButtonClass} onClick={() => cancel.mutate()} disabled={cancel.isPending || e.status === "cancelling"}>
                  Cancel run
                </button>
              ) : (
                <button type="button" className={buttonClass} onClick={() => rerun.mutate()} disabled={rerun.isPending}>
                  Run again
                </button>
              )}
            </>
          ) : null
        }
      >
        Run of {e.workflowName}
      </PageTitle>
      <ErrorBox error={cancel.error ?? rerun.error} />
      <dl className="mb-4 grid max-w-3xl grid-cols-2 gap-x-6 gap-y-1 text-sm sm:grid-cols-4">
        <dt className="font-medium">Status</dt>
        <dd data-testid="execution-status"><StatusBadge status={e.status} /></dd>
        <dt className="font-medium">Trigger</dt>
        <dd>{e.trigger}</dd>
        <dt className="font-medium">Started</dt>
        <dd>{formatDate(e.startedAt ?? e.createdAt)}</dd>
        <dt className="font-medium">Duration</dt>
        <dd>{formatDuration(e.durationMs)}</dd>
      </dl>
      <div className="mb-4 max-w-3xl">
        <div className="mb-1 text-sm">{p.done} of {p.total} jobs done</div>
        <div role="progressbar" aria-label="Jobs done" aria-valuemin={0} aria-valuemax={100} aria-valuenow={p.percent} className="h-2 w-full rounded bg-slate-200">
          <div className="h-2 rounded bg-indigo-600 transition-all" style={{ width: `${p.percent}%` }} />
        </div>
      </div>
      {e.error ? <ErrorBox error={new Error(e.error)} /> : null}
      <table className="w-full border-collapse bg-white text-sm">
        <thead>
          <tr className="border-b border-slate-300 text-left">
            <th className="p-2">Job</th>
            <th className="p-2">Status</th>
            <th className="p-2 text-right">Rows read</th>
            <th className="p-2 text-right">Rows written</th>
            <th className="p-2">Duration</th>
            <th className="p-2">Output</th>
            <th className="p-2">Error / note</th>
          </tr>
        </thead>
        <tbody>
          {e.jobs.map((job) => {
            const outputs = (job.outputs ?? []) as { table: string; layer: string; version: number | null }[];
            const ms = job.startedAt && job.finishedAt ? new Date(job.finishedAt).getTime() - new Date(job.startedAt).getTime() : null;
            return (
              <tr key={job.jobRunId} className="border-b border-slate-200" data-testid="job-row" data-job={job.name} data-status={job.status}>
                <td className="p-2">{job.name}{job.attempt > 1 ? ` (attempt ${job.attempt})` : ""}</td>
                <td className="p-2"><StatusBadge status={job.status} label={job.name} /></td>
                <td className="p-2 text-right">{formatNumber(job.rowsRead)}</td>
                <td className="p-2 text-right">{formatNumber(job.rowsWritten)}</td>
                <td className="p-2">{formatDuration(ms)}</td>
                <td className="p-2">
                  {outputs.map((output) => (
                    <Link key={output.table} to={`/catalog/${output.table}`} className="font-mono text-indigo-800 hover:underline">{output.table}</Link>
                  ))}
                </td>
                <td className="p-2">
                  {job.error ? (
                    job.error.detail === null || job.error.detail === undefined ? (
                      <p className="text-red-800" data-testid="job-error">{job.error.message}</p>
                    ) : (
                      <details data-testid="job-error">
                        <summary className="cursor-pointer text-red-800">{job.error.message}</summary>
                        <p className="mt-1 text-xs font-medium">Detail</p>
                        <pre className="whitespace-pre-wrap text-xs" data-testid="job-error-detail">{typeof job.error.detail === "string" ? job.error.detail : JSON.stringify(job.error.detail, null, 2)}</pre>
                      </details>
                    )
                  ) : (
                    job.note ?? ""
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
