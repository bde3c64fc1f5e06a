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
