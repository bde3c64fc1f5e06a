import dagre from "@dagrejs/dagre";

/** A node of GET /api/workflows/{id}/lineage (docs/lineage.md, "The graph"). */
export interface LineageNode {
  id: string;
  type: "source" | "bronze" | "silver" | "gold" | string;
  label: string;
  alias: string | null;
  name: string;
  rowCount: number | null;
  lastUpdated: string | null;
  status: string | null;
}

export interface LineageEdge {
  id: string;
  source: string;
  target: string;
  jobName: string | null;
  status: string | null;
}

export interface Lineage {
  nodes: LineageNode[];
  edges: LineageEdge[];
}

export const LAYER_COLOURS: Record<string, { background: string; border: string; text: string }> = {
  source: { background: "#f1f5f9", border: "#475569", text: "#0f172a" },
  bronze: { background: "#fde7d2", border: "#9a4a12", text: "#431407" },
  silver: { background: "#e5e7eb", border: "#4b5563", text: "#111827" },
  gold: { background: "#fef3c7", border: "#a16207", text: "#422006" },
};

/** The lake table a node stands for (`silver.customers` -> `customers`), or null for a source. */
export function tableOf(node: LineageNode): string | null {
  if (node.type === "source") return null;
  if (node.alias) return node.alias.split(".").slice(1).join(".") || node.alias;
  return node.label;
}

const UPLOADED = /(?:^|\/)uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.csv$/i;

/** The id of the uploaded file a source node reads (the landing area keeps uploads as
 * `uploads/<id>.csv`), or null. */
export function uploadedFileId(node: LineageNode): string | null {
  if (node.type !== "source") return null;
  return UPLOADED.exec(node.name)?.[1]?.toLowerCase() ?? null;
}

/** The graph with each uploaded file's source node labelled with the name it was uploaded
 * under (`names`: file id -> original name) instead of its generated one. */
export function withFileNames(lineage: Lineage, names: Map<string, string>): Lineage {
  if (names.size === 0) return lineage;
  return {
    ...lineage,
    nodes: lineage.nodes.map((node) => {
      const id = uploadedFileId(node);
      const name = id ? names.get(id) : undefined;
      return name ? { ...node, label: name } : node;
    }),
  };
}

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 84;

/** Left-to-right positions (dagre): sources on the left, gold on the right. */
export function layout(lineage: Lineage): Map<string, { x: number; y: number }> {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 80 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of lineage.nodes) graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of lineage.edges) {
    if (graph.hasNode(edge.source) && graph.hasNode(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  dagre.layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const node of lineage.nodes) {
    const placed = graph.node(node.id);
    positions.set(node.id, { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 });
  }
  return positions;
}

/** A job as the planned graph needs it: what it reads and writes, and for an ingest job
 * (reading no table) what its source is called. */
export interface PlannedJob {
  name: string;
  reads: string[];
  writes: string | null;
  layer: string | null;
  source: string | null;
}

/** The graph a workflow's (or a template's) jobs will make, before any run reported it:
 * a source node per ingest job, a node per table, an edge per job input. */
export function graphFromJobs(jobs: PlannedJob[]): Lineage {
  const nodes = new Map<string, LineageNode>();
  const edges: LineageEdge[] = [];
  const layerOf = (table: string, given: string | null) =>
    given ?? (["bronze", "silver", "gold"].find((layer) => table.startsWith(`${layer}_`)) ?? "silver");
  const tableNode = (table: string, layer: string | null) => {
    if (!nodes.has(table))
      nodes.set(table, { id: table, type: layerOf(table, layer), label: table, alias: `${layerOf(table, layer)}.${table}`, name: table, rowCount: null, lastUpdated: null, status: null });
    return table;
  };
  for (const job of jobs) if (job.writes) tableNode(job.writes, job.layer);
  for (const job of jobs) {
    if (!job.writes) continue;
    const inputs = job.reads.length ? job.reads.map((table) => tableNode(table, null)) : [];
    if (!inputs.length && job.source) {
      const id = `source:${job.source}`;
      if (!nodes.has(id)) nodes.set(id, { id, type: "source", label: job.source, alias: null, name: job.source, rowCount: null, lastUpdated: null, status: null });
      inputs.push(id);
    }
    for (const input of inputs) edges.push({ id: `${input}->${job.writes}`, source: input, target: job.writes, jobName: job.name, status: null });
  }
  return { nodes: [...nodes.values()], edges };
}

type Config = Record<string, unknown> | null | undefined;

/** A job configuration (a template's or a saved job's) as a PlannedJob. */
export function plannedJob(name: string, config: { sourceConfig?: Config; destinationConfig?: Config; transformationConfig?: Config }): PlannedJob {
  const source = (config.sourceConfig ?? {}) as { type?: string; tables?: string[]; databaseConfig?: { tableName?: string | null; query?: string | null; storedProcedure?: string | null }; fileConfig?: { fileName?: string | null; filePath?: string | null } };
  const destination = (config.destinationConfig ?? {}) as Record<string, { tableName?: string } | null | undefined>;
  const joins = ((config.transformationConfig ?? {}) as { joins?: { table: string }[] }).joins ?? [];
  let writes: string | null = null;
  let layer: string | null = null;
  for (const key of ["bronze", "silver", "gold"]) {
    const table = destination[`${key}Config`]?.tableName;
    if (table) {
      writes = table;
      layer = key;
    }
  }
  const db = source.databaseConfig;
  const file = source.fileConfig;
  const label = db
    ? (db.tableName ?? db.storedProcedure ?? (db.query ? `${name} (query)` : null))
    : file
      ? (file.fileName ?? file.filePath ?? `${name} (CSV)`)
      : null;
  // A template names its parameters `${file:crmCustomers}`: show the parameter's name.
  const shown = label?.replace(/^\$\{\w+:(\w+)\}$/, "$1") ?? null;
  return { name, reads: [...(source.tables ?? []), ...joins.map((join) => join.table)], writes, layer, source: shown };
}
