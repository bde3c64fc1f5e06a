import { lazy, Suspense } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import JobsTab from "./workflow/JobsTab";
import { canEdit, useMe } from "../auth";
import { buttonClass, ErrorBox, formatDate, formatDuration, Loading, PageTitle, secondaryButtonClass, StatusBadge } from "../ui";

import TriggersTab from "./workflow/TriggersTab";

const LineageGraph = lazy(() => import("../components/LineageGraph"));

const TABS = ["jobs", "runs", "lineage", "triggers", "settings"] as const;
type Tab = (typeof TABS)[number];

export default function WorkflowDetail() {
  const { id = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const tab: Tab = (TABS as readonly string[]).includes(params.get("tab") ?? "") ? (params.get("tab") as Tab) : "jobs";
  const me = useMe();
  const editor = canEdit(me.data?.role);
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const path = { params: { path: { workflow_id: id } } };
  const workflow = useQuery({
    queryKey: ["workflow", id],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}", path)),
  });
  const refresh = () => {
    queryClient.invalidateQueries({ queryKey: ["workflow", id] });
    queryClient.invalidateQueries({ queryKey: ["workflows"] });
  };
  const run = useMutation({
    mutationFn: () => unwrap(api.POST("/api/workflows/{workflow_id}/run", { params: { path: { workflow_id: id }, query: {} } })),
    onSuccess: (answer) => navigate(`/executions/${(answer as { executionId: string }).executionId}`),
  });
  const pause = useMutation({
    mutationFn: () => unwrap(api.POST("/api/workflows/{workflow_id}/pause", path)),
    onSuccess: () => {
      run.reset(); // a refused run's message no longer applies
      refresh();
    },
  });
  const activate = useMutation({
    mutationFn: () =>
      unwrap(
        api.PATCH("/api/workflows/{workflow_id}", {
          params: { path: { workflow_id: id } },
          // the version this page shows: a change made meanwhile is a 409, shown, not overwritten
          body: { status: "active", version: workflow.data?.version } as never,
        }),
      ),
    onSuccess: () => {
      run.reset(); // a refused run's message no longer applies
      refresh();
    },
  });
  const clone = useMutation({
    mutationFn: () => unwrap(api.POST("/api/workflows/{workflow_id}/clone", { params: { path: { workflow_id: id } }, body: {} as never })),
    onSuccess: (copy) => {
      queryClient.invalidateQueries({ queryKey: ["workflows"] });
      navigate(`/workflows/${(copy as { id: string }).id}`);
    },
  });
  const resume = useMutation({
    mutationFn: () => unwrap(api.POST("/api/workflows/{workflow_id}/resume", path)),
    onSuccess: () => {
      run.reset(); // a refused run's message no longer applies
      refresh();
    },
  });

  if (workflow.isLoading) return <Loading what="the workflow" />;
  if (!workflow.data) return <ErrorBox error={workflow.error} />;
  const w = workflow.data;

  return (
    <div>
      <p className="mb-2 text-sm">
        <Link to="/workflows" className="text-indigo-800 underline">Workflows</Link>
      </p>
      <PageTitle
        actions={
          editor ? (
            <>
              {w.status === "paused" ? (
                <button type="button" className={secondaryButtonClass} onClick={() => resume.mutate()} disabled={resume.isPending}>Resume</button>
              ) : w.status === "active" || w.status === "scheduled" ? (
                <button type="button" className={secondaryButtonClass} onClick={() => pause.mutate()} disabled={pause.isPending}>Pause</button>
              ) : w.status === "draft" ? (
                <button type="button" className={secondaryButtonClass} onClick={() => activate.mutate()} disabled={activate.isPending}>Activate</button>
              ) : null}
              <button type="button" className={secondaryButtonClass} onClick={() => clone.mutate()} disabled={clone.isPending}>
                {clone.isPending ? "Cloning…" : "Clone"}
              </button>
              <button type="button" className={buttonClass} onClick={() => run.mutate()} disabled={run.isPending}>
                {run.isPending ? "Starting…" : "Run now"}
              </button>
            </>
          ) : null
        }
      >
        {w.name}
      </PageTitle>
      <p className="mb-3 flex flex-wrap items-center gap-3 text-sm">
        <span data-testid="workflow-status"><StatusBadge status={w.status} /></span> <span>{w.environment}</span> {w.team ? <span>team {w.team}</span> : null}
        <span>{w.jobCount} jobs</span>
      </p>
      {w.description ? <p className="mb-3 max-w-3xl text-sm">{w.description}</p> : null}
      <ErrorBox error={run.error ?? pause.error ?? resume.error ?? activate.error ?? clone.error} />
      <div role="tablist" aria-label="Workflow" className="mb-4 flex gap-1 border-b border-slate-300">
        {TABS.map((name) => (
          <button
            key={name}
            role="tab"
            type="button"
            aria-selected={tab === name}
            aria-controls={`panel-${name}`}
            id={`tab-${name}`}
            tabIndex={tab === name ? 0 : -1}
            onClick={() => setParams({ tab: name })}
            onKeyDown={(event) => {
              // the ARIA tabs pattern: arrows move between tabs, Home/End to the ends
              const index = TABS.indexOf(name);
              const next =
                event.key === "ArrowRight" ? TABS[(index + 1) % TABS.length]
                : event.key === "ArrowLeft" ? TABS[(index - 1 + TABS.length) % TABS.length]
                : event.key === "Home" ? TABS[0]
                : event.key === "End" ? TABS[TABS.length - 1]
                : null;
              if (!next) return;
              event.preventDefault();
              setParams({ tab: next });
              document.getElementById(`tab-${next}`)?.focus();
            }}
            className={`-mb-px border-b-2 px-3 py-2 text-sm capitalize ${tab === name ? "border-indigo-700 font-semibold text-indigo-900" : "border-transparent text-slate-700 hover:text-slate-900"}`}
          >
            {name}
          </button>
        ))}
      </div>
      <section role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === "jobs" ? <JobsTab id={id} editor={editor} /> : null}
        {tab === "runs" ? <RunsTab id={id} /> : null}
        {tab === "lineage" ? (
          <Suspense fallback={<Loading what="the lineage graph" />}>
            <LineageGraph workflowId={id} />
          </Suspense>
        ) : null}
        {tab === "triggers" ? <TriggersTab id={id} editor={editor} /> : null}
        {tab === "settings" ? <SettingsTab workflow={w} /> : null}
      </section>
    </div>
  );
}

function RunsTab({ id }: { id: string }) {
  const runs = useQuery({
    queryKey: ["executions", id],
    queryFn: () => unwrap(api.GET("/api/executions", { params: { query: { workflowId: id, limit: 100 } } })),
    refetchInterval: 5_000,
  });
  if (runs.isLoading) return <Loading what="runs" />;
  if (!runs.data) return <ErrorBox error={runs.error} />;
  if (!runs.data.data.length) return <p>This workflow has not run yet.</p>;
  return (
    <table className="w-full border-collapse bg-white text-sm">
      <thead>
        <tr className="border-b border-slate-300 text-left">
          <th className="p-2">Started</th>
          <th className="p-2">Status</th>
          <th className="p-2">Trigger</th>
          <th className="p-2">Duration</th>
          <th className="p-2">By</th>
        </tr>
      </thead>
      <tbody>
        {runs.data.data.map((run) => (
          <tr key={run.id} className="border-b border-slate-200">
            <td className="p-2"><Link to={`/executions/${run.id}`} className="text-indigo-800 hover:underline">{formatDate(run.startedAt ?? run.createdAt)}</Link></td>
            <td className="p-2"><StatusBadge status={run.status} /></td>
            <td className="p-2">{run.trigger}</td>
            <td className="p-2">{formatDuration(run.durationMs)}</td>
            <td className="p-2">{run.requestedBy ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SettingsTab({ workflow }: { workflow: Schemas["WorkflowPublic"] }) {
  const rows: [string, string][] = [
    ["Name", workflow.name],
    ["Description", workflow.description || "—"],
    ["Team", workflow.team ?? "—"],
    ["Owner", workflow.owner ?? "—"],
    ["Environment", workflow.environment],
    ["Tags", workflow.tags.join(", ") || "—"],
    ["Status", workflow.status],
    ["Version", String(workflow.version)],
    ["Created", formatDate(workflow.createdAt)],
    ["Updated", formatDate(workflow.updatedAt)],
  ];
  return (
    <dl className="grid max-w-2xl grid-cols-[10rem_1fr] gap-y-1 text-sm">
      {rows.map(([label, value]) => (
        <div key={label} className="contents">
          <dt className="font-medium">{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
