import { describe, expect, it } from "vitest";
import { filterTemplates, readParameters } from "./templates";

const templates = [
  { name: "BFSI Customer 360", description: "Core banking + CRM", category: "customer", industryVertical: "BFSI", useCase: "customer-360", tags: ["bfsi", "kyc"] },
  { name: "Retail Sales", description: "Orders into gold", category: "sales", industryVertical: "Retail", useCase: null, tags: [] },
];

describe("filterTemplates", () => {
  it("matches every word of the search in name, description, use case or tags", () => {
    expect(filterTemplates(templates, { q: "customer 360" }).map((t) => t.name)).toEqual(["BFSI Customer 360"]);
    expect(filterTemplates(templates, { q: "KYC" }).map((t) => t.name)).toEqual(["BFSI Customer 360"]);
    expect(filterTemplates(templates, { q: "customer orders" })).toEqual([]);
    expect(filterTemplates(templates, {})).toHaveLength(2);
  });

  it("filters by industry and category exactly", () => {
    expect(filterTemplates(templates, { industry: "Retail" }).map((t) => t.name)).toEqual(["Retail Sales"]);
    expect(filterTemplates(templates, { category: "customer", industry: "Retail" })).toEqual([]);
  });
});

describe("readParameters", () => {
  it("reads the connections and files a template asks for, tolerating absent lists", () => {
    expect(readParameters(null)).toEqual({ connections: [], files: [] });
    expect(readParameters({ connections: [{ key: "core" }], files: "nope" })).toEqual({ connections: [{ key: "core" }], files: [] });
  });
});

describe("filterTemplates: complexity and the jobs a template creates", () => {
  const templates = [
    { name: "BFSI Customer 360", description: "banks", category: "bfsi", tags: [], complexity: "advanced", creates: [{ name: "Build Gold Customer 360", writes: "gold_customer_360" }] },
    { name: "Retail basket", description: "shops", category: "retail", tags: [], complexity: "simple", creates: [{ name: "Ingest sales", writes: "bronze_sales" }] },
  ];
  it("filters on complexity", () => {
    expect(filterTemplates(templates, { complexity: "simple" }).map((t) => t.name)).toEqual(["Retail basket"]);
    expect(filterTemplates(templates, { complexity: "moderate" })).toEqual([]);
  });
  it("finds a template by a table it writes", () => {
    expect(filterTemplates(templates, { q: "gold_customer_360" }).map((t) => t.name)).toEqual(["BFSI Customer 360"]);
  });
});
