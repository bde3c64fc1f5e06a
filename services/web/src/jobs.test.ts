import { describe, expect, it } from "vitest";
import { bronzeTableFor, columnOverrides, initialEdits, type DetectedColumn } from "./jobs";

const detected: DetectedColumn[] = [
  { name: "id", type: "integer" },
  { name: "amount", type: "decimal" },
  { name: "booked", type: "date", format: "%d/%m/%Y" },
];

describe("columnOverrides", () => {
  it("sends only what the user changed", () => {
    const edits = initialEdits(detected);
    expect(columnOverrides(detected, edits)).toEqual([]);
    edits.amount = { ...edits.amount, type: "string" };
    edits.booked = { ...edits.booked, format: "%Y-%m-%d" };
    edits.id = { ...edits.id, rename: "customer_id" };
    expect(columnOverrides(detected, edits)).toEqual([
      { name: "id", rename: "customer_id" },
      { name: "amount", type: "string" },
      { name: "booked", format: "%Y-%m-%d" },
    ]);
  });
});

describe("bronzeTableFor", () => {
  it("makes a table name from the file name", () => {
    expect(bronzeTableFor("CRM Export (2).csv")).toBe("bronze_crm_export_2");
    expect(bronzeTableFor("...csv")).toBe("bronze_file");
  });
});
