import { describe, expect, it } from "vitest";
import { layout, tableOf, type Lineage } from "./lineage";

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
