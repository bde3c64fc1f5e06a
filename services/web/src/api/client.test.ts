import { describe, expect, it } from "vitest";
import { ApiError, problemsByField, problemsFor } from "./client";

describe("ApiError", () => {
  it("keeps the API's words: a detail string, or each 422 problem with its field", () => {
    expect(new ApiError(409, "table 'x' is already written").message).toBe("table 'x' is already written");
    const error = new ApiError(422, [
      { loc: ["body", "files", "crmCustomers"], field: "files.crmCustomers", msg: "missing: give fileId" },
      { loc: ["body"], field: "", msg: "something else" },
    ]);
    expect(error.message).toBe("files.crmCustomers: missing: give fileId; something else");
    expect(error.problems).toHaveLength(2);
    expect(new ApiError(500, undefined).message).toBe("the server answered HTTP 500");
  });
});

describe("problemsByField / problemsFor", () => {
  it("puts each problem next to the field it concerns, nested fields included", () => {
    const grouped = problemsByField([
      { field: "connections.coreBanking.connection.database", msg: "required for sqlite" },
      { field: "connections.coreBanking", msg: "give a connection" },
      { loc: ["body", "tableNames", "x"], msg: "not an identifier" },
    ]);
    expect(problemsFor(grouped, "connections.coreBanking")).toEqual(["required for sqlite", "give a connection"]);
    expect(problemsFor(grouped, "tableNames.x")).toEqual(["not an identifier"]);
    expect(problemsFor(grouped, "connections.core")).toEqual([]);
  });
});
