import { describe, expect, it } from "vitest";
import { graphFromJobs, layout, plannedJob, tableOf, uploadedFileId, withFileNames, type Lineage } from "./lineage";

const node = (id: string, type: string, label: string, alias: string | null = null) => ({
  id, type, label, alias, name: id, rowCount: null, lastUpdated: null, status: null,
});

describe("tableOf", () => {
  it("names the catalog table of a lake node, and none for a source", () => {
    expect(tableOf(node("file:/lake/gold/gold_c360", "gold", "gold_c360", "gold.gold_c360"))).toBe("gold_c360");
    expect(tableOf(node("file:/lake/silver/s", "silver", "s"))).toBe("s");
    expect(tableOf(node("sqlite:/x:customers", "source", "customers"))).toBeNull();
  });
});

describe("layout", () => {
  it("lays the graph out left to right: source, bronze, silver, gold", () => {
    const lineage: Lineage = {
      nodes: [node("g", "gold", "g"), node("s", "silver", "s"), node("b", "bronze", "b"), node("src", "source", "src")],
      edges: [
        { id: "1", source: "src", target: "b", jobName: null, status: null },
        { id: "2", source: "b", target: "s", jobName: null, status: null },
        { id: "3", source: "s", target: "g", jobName: null, status: null },
      ],
    };
    const positions = layout(lineage);
    const xs = ["src", "b", "s", "g"].map((id) => positions.get(id)!.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expect(new Set(xs).size).toBe(4);
  });
});

describe("graphFromJobs", () => {
  it("draws sources, bronze, silver and gold from the jobs' reads and writes", () => {
    const graph = graphFromJobs([
      plannedJob("Ingest", { sourceConfig: { type: "sqlite", databaseConfig: { tableName: "customers" } }, destinationConfig: { bronzeConfig: { tableName: "bronze_c" } } }),
      plannedJob("CRM", { sourceConfig: { type: "csv", fileConfig: { fileName: "crm.csv" } }, destinationConfig: { bronzeConfig: { tableName: "bronze_crm" } } }),
      plannedJob("Master", { sourceConfig: { type: "multi-table", tables: ["bronze_c", "bronze_crm"] }, destinationConfig: { silverConfig: { tableName: "silver_m" } } }),
      plannedJob("360", { sourceConfig: { type: "multi-table", tables: ["silver_m"] }, destinationConfig: { goldConfig: { tableName: "gold_360" } }, transformationConfig: { joins: [{ table: "bronze_c" }] } }),
    ]);
    expect(Object.fromEntries(graph.nodes.map((n) => [n.id, n.type]))).toEqual({
      bronze_c: "bronze", bronze_crm: "bronze", silver_m: "silver", gold_360: "gold",
      "source:customers": "source", "source:crm.csv": "source",
    });
    expect(graph.edges.map((e) => `${e.source}->${e.target}`).sort()).toEqual([
      "bronze_c->gold_360", "bronze_c->silver_m", "bronze_crm->silver_m", "silver_m->gold_360",
      "source:crm.csv->bronze_crm", "source:customers->bronze_c",
    ]);
    expect(tableOf(graph.nodes.find((n) => n.id === "gold_360")!)).toBe("gold_360");
  });
});

describe("plannedJob", () => {
  it("names a template's parameter by its key", () => {
    expect(plannedJob("CRM", { sourceConfig: { type: "csv", fileConfig: { filePath: "${file:crmCustomers}" } }, destinationConfig: { bronzeConfig: { tableName: "bronze_crm" } } }).source).toBe("crmCustomers");
  });
});

describe("uploaded files", () => {
  const id = "f1b24be1-87ed-4fae-a3c0-0123456789ab";
  const upload = { ...node(`file:/data/landing/uploads/${id}.csv`, "source", `${id}.csv`), name: `/data/landing/uploads/${id}.csv` };
  const table = node("sqlite:/x:customers", "source", "customers");
  const bronze = { ...node("file:/lake/bronze/uploads", "bronze", "uploads", "bronze.uploads"), name: "/lake/bronze/uploads/f1b24be1-87ed-4fae-a3c0-0123456789ab.csv" };

  it("finds the id of an uploaded file's source node, and none for anything else", () => {
    expect(uploadedFileId(upload)).toBe(id);
    expect(uploadedFileId({ ...upload, name: `s3://bucket/landing/uploads/${id.toUpperCase()}.csv` })).toBe(id);
    expect(uploadedFileId(table)).toBeNull();
    expect(uploadedFileId(bronze)).toBeNull(); // a lake table is never relabelled
    expect(uploadedFileId({ ...upload, name: `/data/landing/crm/${id}.csv` })).toBeNull();
  });

  it("labels the node with the name it was uploaded under, and leaves the rest as they are", () => {
    const lineage: Lineage = { nodes: [upload, table, bronze], edges: [] };
    const named = withFileNames(lineage, new Map([[id, "crm_customers.csv"]]));
    expect(named.nodes.map((n) => n.label)).toEqual(["crm_customers.csv", "customers", "uploads"]);
    expect(named.nodes[0].name).toBe(upload.name);
    expect(withFileNames(lineage, new Map())).toBe(lineage);
  });
});
