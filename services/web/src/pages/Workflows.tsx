import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { canEdit, useMe } from "../auth";
import { ErrorBox, formatDate, Loading, PageTitle, StatusBadge, buttonClass } from "../ui";

export default function Workflows() {
  const me = useMe();
  const workflows = useQuery({
    queryKey: ["workflows"],
    queryFn: () => unwrap(api.GET("/api/workflows", { params: { query: { limit: 200 } } })),
  });
  // The last and next run of the page's workflows: one request each, for the page's ids
  // (runs and triggers are the orchestrator's; the list itself is the catalog's).
  const ids = (workflows.data?.data ?? []).map((w) => w.id);
  const latest = useQuery({
    queryKey: ["latest-runs", ids],
    queryFn: () => unwrap(api.GET("/api/executions/latest", { params: { query: { workflowId: ids } } })),
    enabled: ids.length > 0,
    refetchInterval: 5_000,
  });
  const last = new Map((latest.data?.data ?? []).map((row) => [row.workflowId, row]));
  const nextRuns = useQuery({
    queryKey: ["next-runs", ids],
    queryFn: () => unwrap(api.GET("/api/triggers/next-runs", { params: { query: { workflowId: ids } } })),
    enabled: ids.length > 0,
    refetchInterval: 60_000,
  });
  const next = new Map((nextRuns.data?.data ?? []).map((row) => [row.workflowId, row.nextRunAt]));

  return (
    <div>
      <PageTitle
        actions={canEdit(me.data?.role) ? <Link to="/templates" className={buttonClass}>New from a template</Link> : null}
      >
        Workflows
      </PageTitle>
      {workflows.isLoading ? <Loading what="workflows" /> : null}
      <ErrorBox error={workflows.error} />
      {workflows.data && workflows.data.data.length === 0 ? (
        <p>
          No workflow yet. <Link to="/templates" className="text-indigo-800 underline">Start from a template</Link>.
        </p>
      ) : null}
      {workflows.data && workflows.data.data.length ? (
        <table className="w-full border-collapse bg-white text-sm">
          <thead>
            <tr className="border-b border-slate-300 text-left">
              <th className="p-2">Name</th>
              <th className="p-2">Status</th>
              <th className="p-2">Jobs</th>
              <th className="p-2">Team</th>
              <th className="p-2">Environment</th>
              <th className="p-2">Last run</th>
              <th className="p-2">Next run</th>
            </tr>
          </thead>
          <tbody>
            {workflows.data.data.map((workflow) => {
              const run = last.get(workflow.id);
              return (
                <tr key={workflow.id} className="border-b border-slate-200">
                  <td className="p-2">
                    <Link to={`/workflows/${workflow.id}`} className="font-medium text-indigo-800 hover:underline">{workflow.name}</Link>
                  </td>
                  <td className="p-2"><StatusBadge status={workflow.status} /></td>
                  <td className="p-2">{workflow.jobCount}</td>
                  <td className="p-2">{workflow.team ?? "—"}</td>
                  <td className="p-2">{workflow.environment}</td>
                  <td className="p-2">
                    {run ? (
                      <Link to={`/executions/${run.executionId}`} className="inline-flex items-center gap-2 hover:underline">
                        <StatusBadge status={run.status} /> {formatDate(run.createdAt)}
                      </Link>
                    ) : (
                      "never run"
                    )}
                  </td>
                  <td className="p-2" data-testid="next-run">
                    {workflow.status === "paused" ? "paused" : next.has(workflow.id) ? formatDate(next.get(workflow.id)) : "—"}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}
