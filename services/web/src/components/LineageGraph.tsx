import { useCallback, useMemo } from "react";
import { useNavigate } from "react-router-dom";
import { useQueries, useQuery } from "@tanstack/react-query";
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { api, unwrap } from "../api/client";
import { graphFromJobs, LAYER_COLOURS, layout, NODE_HEIGHT, NODE_WIDTH, plannedJob, tableOf, uploadedFileId, withFileNames, type Lineage, type LineageNode, type PlannedJob } from "../lineage";
import { ErrorBox, formatDate, formatNumber, Loading } from "../ui";

type DatasetNode = Node<{ dataset: LineageNode }, "dataset">;

function DatasetCard({ data }: NodeProps<DatasetNode>) {
  const dataset = data.dataset;
  const colours = LAYER_COLOURS[dataset.type] ?? LAYER_COLOURS.source;
  return (
    <div
      data-testid="lineage-node"
      data-layer={dataset.type}
      data-label={dataset.label}
      className="rounded-md border-2 px-2 py-1 text-xs shadow-sm"
      style={{ width: NODE_WIDTH, height: NODE_HEIGHT, background: colours.background, borderColor: colours.border, color: colours.text }}
    >
      <Handle type="target" position={Position.Left} />
      <div className="flex items-center justify-between">
        <span className="font-semibold uppercase">{dataset.type}</span>
        {dataset.status ? <span>{dataset.status}</span> : null}
      </div>
      <div className="truncate font-mono text-sm" title={dataset.name}>{dataset.label}</div>
      <div>{dataset.rowCount === null ? "rows unknown" : `${formatNumber(dataset.rowCount)} rows`}</div>
      <div className="truncate">updated {formatDate(dataset.lastUpdated)}</div>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const nodeTypes = { dataset: DatasetCard };

export default function LineageGraph({ workflowId }: { workflowId: string }) {
  const lineage = useQuery({
    queryKey: ["lineage", workflowId],
    queryFn: async () =>
      (await unwrap(api.GET("/api/workflows/{workflow_id}/lineage", { params: { path: { workflow_id: workflowId } } }))) as unknown as Lineage,
    refetchInterval: 10_000,
  });
  const empty = lineage.data !== undefined && lineage.data.nodes.length === 0;
  const jobs = useQuery({
    queryKey: ["jobs", workflowId],
    queryFn: () => unwrap(api.GET("/api/workflows/{workflow_id}/jobs", { params: { path: { workflow_id: workflowId } } })),
    enabled: empty,
  });
  const planned = useMemo(
    () => (jobs.data ? graphFromJobs(jobs.data.data.map((job) => plannedJob(job.name, job as never))) : null),
    [jobs.data],
  );
  // An uploaded CSV is kept as `uploads/<id>.csv`: its node shows the name it was uploaded under.
  const fileIds = useMemo(
    () => [...new Set((lineage.data?.nodes ?? []).map(uploadedFileId).filter((id): id is string => id !== null))],
    [lineage.data],
  );
  const fileNames = useQueries({
    queries: fileIds.map((id) => ({
      queryKey: ["file", id],
      queryFn: () => unwrap(api.GET("/api/files/{file_id}", { params: { path: { file_id: id } } })),
      staleTime: Infinity,
      retry: false,
    })),
    // Re-run (and a new Map) only when a file's answer changes.
    combine: useCallback(
      (files: { data?: { originalName: string } }[]) =>
        new Map(files.flatMap((file, index) => (file.data ? [[fileIds[index], file.data.originalName] as const] : []))),
      [fileIds],
    ),
  });
  const named = useMemo(() => lineage.data && withFileNames(lineage.data, fileNames), [lineage.data, fileNames]);

  if (lineage.isLoading) return <Loading what="the lineage graph" />;
  if (!lineage.data) return <ErrorBox error={lineage.error} />;
  if (empty) {
    if (jobs.isLoading) return <Loading what="the jobs" />;
    if (!planned) return <ErrorBox error={jobs.error} />;
    return (
      <LineageCanvas
        lineage={planned}
        note="No run has reported lineage yet: this is the graph the workflow's jobs will make. Row counts and status appear after the first run."
      />
    );
  }
  return <LineageCanvas lineage={named ?? lineage.data} />;
}

/** A template's job graph, before it is instantiated. */
export function PlannedGraph({ jobs }: { jobs: PlannedJob[] }) {
  const lineage = useMemo(() => graphFromJobs(jobs), [jobs]);
  return <LineageCanvas lineage={lineage} height="h-[420px]" clickable={false} />;
}

function LineageCanvas({ lineage, note, height = "h-[560px]", clickable = true }: { lineage: Lineage; note?: string; height?: string; clickable?: boolean }) {
  const navigate = useNavigate();
  const { nodes, edges } = useMemo(() => {
    const positions = layout(lineage);
    return {
      nodes: lineage.nodes.map((dataset) => ({
        id: dataset.id,
        type: "dataset" as const,
        position: positions.get(dataset.id) ?? { x: 0, y: 0 },
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        data: { dataset },
        ariaLabel: `${dataset.type} ${dataset.label}`,
      })),
      edges: lineage.edges.map((edge) => ({
        id: edge.id,
        source: edge.source,
        target: edge.target,
        animated: edge.status === "running",
        style: { stroke: edge.status === "failed" ? "#b91c1c" : "#64748b" },
      })),
    };
  }, [lineage]);

  return (
    <div>
      {note ? <p role="note" className="mb-2 rounded border border-slate-300 bg-white p-2 text-sm">{note}</p> : null}
      <ul className="mb-2 flex gap-3 text-xs" aria-label="Layers">
        {Object.entries(LAYER_COLOURS).map(([layer, colours]) => (
          <li key={layer} className="flex items-center gap-1">
            <span className="inline-block h-3 w-3 rounded border-2" style={{ background: colours.background, borderColor: colours.border }} /> {layer}
          </li>
        ))}
        {clickable ? <li>Click a table to open it in the catalog.</li> : null}
      </ul>
      <div className={`${height} rounded border border-slate-300 bg-white`} data-testid="lineage-graph">
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          fitView
          nodesDraggable={false}
          nodesConnectable={false}
          onNodeClick={(_, node) => {
            if (!clickable) return;
            const table = tableOf((node as DatasetNode).data.dataset);
            if (table) navigate(`/catalog/${table}`);
          }}
          proOptions={{ hideAttribution: true }}
        >
          <Background />
          <MiniMap
            pannable
            zoomable
            ariaLabel="Lineage minimap"
            nodeColor={(node) => (LAYER_COLOURS[(node as DatasetNode).data.dataset.type] ?? LAYER_COLOURS.source).border}
          />
          <Controls />
        </ReactFlow>
      </div>
    </div>
  );
}
