import { describe, expect, it } from "vitest";
import { ApiError } from "./api/client";
import {
  bronzeTableForSource,
  csvJobBody,
  databaseFormFromJob,
  databaseJobBody,
  emptyDatabaseForm,
  emptyTransformForm,
  expressionVerdict,
  knownColumns,
  groupProblems,
  otherProblems,
  parameterKind,
  patchBody,
  problemsAt,
  transformFormFromJob,
  transformJobBody,
  typedParameter,
  type JobRead,
} from "./jobForm";

const dbJob: JobRead = {
  id: "j1",
  version: 3,
  name: "Ingest customers",
  type: "database",
  sourceConfig: { type: "sqlite", databaseConfig: { connectionId: "c1", tableName: "customers", isIncremental: true, deltaColumn: "updated_at" } },
  destinationConfig: { bronzeConfig: { tableName: "bronze_customers" } },
};

describe("patchBody", () => {
  it("sends only the top-level fields that changed, with the version read", () => {
    const unchanged = databaseJobBody(databaseFormFromJob(dbJob), dbJob);
    expect(patchBody(dbJob, unchanged)).toEqual({ version: 3 });
    const form = databaseFormFromJob(dbJob);
    form.bronze.writeMode = "overwrite";
    expect(patchBody(dbJob, databaseJobBody(form, dbJob))).toEqual({
      version: 3,
      destinationConfig: { bronzeConfig: { tableName: "bronze_customers", writeMode: "overwrite" } },
    });
  });

  it("sends null to remove an optional section", () => {
    const job: JobRead = { ...dbJob, description: "old words" };
    const form = databaseFormFromJob(job);
    form.description = "  ";
    expect(patchBody(job, databaseJobBody(form, job))).toEqual({ version: 3, description: null });
  });
});

describe("databaseJobBody", () => {
  it("builds a table job and leaves the API's defaults out", () => {
    const form = { ...emptyDatabaseForm(), name: " Accounts ", connectionId: "c9", sourceType: "postgresql", tableName: "public.accounts", bronze: { ...emptyDatabaseForm().bronze, tableName: "bronze_accounts" } };
    expect(databaseJobBody(form)).toEqual({
      name: "Accounts",
      type: "database",
      description: null,
      sourceConfig: { type: "postgresql", databaseConfig: { connectionId: "c9", tableName: "public.accounts" } },
      destinationConfig: { bronzeConfig: { tableName: "bronze_accounts" } },
    });
  });

  it("sends only the chosen mode: a query drops the table and the incremental column when off", () => {
    const form = databaseFormFromJob(dbJob);
    form.mode = "query";
    form.query = "SELECT id FROM customers";
    form.isIncremental = false;
    const source = databaseJobBody(form, dbJob).sourceConfig as { databaseConfig: Record<string, unknown> };
    expect(source.databaseConfig).toEqual({ connectionId: "c1", query: "SELECT id FROM customers", isIncremental: false });
  });

  it("sends parallel ranges for a PostgreSQL or MySQL table only, and keeps them on an edit", () => {
    const base = { ...emptyDatabaseForm(), name: "p", connectionId: "c", sourceType: "postgresql", tableName: "public.big", partitions: " 4 ", partitionColumn: "id" };
    const config = (form: typeof base) => (databaseJobBody(form).sourceConfig as { databaseConfig: Record<string, unknown> }).databaseConfig;
    expect(config(base)).toEqual({ connectionId: "c", tableName: "public.big", partitions: 4, partitionColumn: "id" });
    expect(config({ ...base, partitions: "1", partitionColumn: "" })).toEqual({ connectionId: "c", tableName: "public.big" });
    expect(config({ ...base, partitions: "four" })).toMatchObject({ partitions: "four" });
    expect(config({ ...base, sourceType: "sqlite" })).toEqual({ connectionId: "c", tableName: "public.big" });
    expect(config({ ...base, mode: "query" as const, tableName: "", query: "SELECT 1" })).toEqual({ connectionId: "c", query: "SELECT 1" });
    const job: JobRead = { ...dbJob, sourceConfig: { type: "mysql", databaseConfig: { connectionId: "c1", tableName: "big", partitions: 3 } } };
    const form = databaseFormFromJob(job);
    expect([form.partitions, form.partitionColumn]).toEqual(["3", ""]);
    expect(patchBody(job, databaseJobBody(form, job))).toEqual({ version: 3 });
  });

  it("types stored procedure parameters by their source type", () => {
    const form = { ...emptyDatabaseForm(), name: "p", connectionId: "c", sourceType: "sql-server", mode: "procedure" as const, storedProcedure: "dbo.usp_accounts" };
    form.parameters = { "@since": "2024-01-01", "@limit": "50", "@active": "true", "@note": "" };
    form.parameterTypes = { "@since": "date", "@limit": "int", "@active": "bit", "@note": "nvarchar" };
    const source = databaseJobBody(form).sourceConfig as { databaseConfig: Record<string, unknown> };
    expect(source.databaseConfig).toEqual({
      connectionId: "c",
      storedProcedure: "dbo.usp_accounts",
      parameters: { "@since": "2024-01-01", "@limit": 50, "@active": true, "@note": null },
    });
  });
});

describe("parameters", () => {
  it("chooses an input per source type", () => {
    expect(parameterKind("int")).toBe("number");
    expect(parameterKind("decimal(10,2)")).toBe("number");
    expect(parameterKind("bit")).toBe("boolean");
    expect(parameterKind("datetime2")).toBe("datetime");
    expect(parameterKind("date")).toBe("date");
    expect(parameterKind("nvarchar(50)")).toBe("text");
  });

  it("leaves a non-number as typed, for the API to refuse in words", () => {
    expect(typedParameter("12x", "int")).toBe("12x");
    expect(typedParameter("", "int")).toBeNull();
  });
});

describe("csvJobBody", () => {
  it("keeps the stored columns and the user's type change", () => {
    const job: JobRead = {
      version: 1,
      name: "csv",
      type: "file-based",
      sourceConfig: { type: "csv", fileConfig: { fileName: "a.csv", columns: [{ name: "id", type: "integer" }, { name: "amount", type: "decimal" }] } },
      destinationConfig: { bronzeConfig: { tableName: "bronze_a" } },
    };
    const body = csvJobBody(job, "csv", "", { tableName: "bronze_a", writeMode: "append", auditColumns: true, sharedAppend: false }, [
      { name: "id", type: "integer" },
      { name: "amount", type: "string", format: "", rename: "amount_text" },
    ]);
    expect(patchBody(job, body)).toEqual({
      version: 1,
      sourceConfig: { type: "csv", fileConfig: { fileName: "a.csv", columns: [{ name: "id", type: "integer" }, { name: "amount", type: "string", rename: "amount_text" }] } },
    });
  });
});

describe("transformJobBody", () => {
  it("builds a silver job with its key, surrogate key and derived columns", () => {
    const form = { ...emptyTransformForm("silver"), name: "Silver customers", tables: ["bronze_customers"], tableName: "silver_customers", primaryKey: "customer_id", surrogateKey: "customer_sk", derived: [{ name: "email_lower", expression: "LOWER(email)" }, { name: "", expression: "" }] };
    expect(transformJobBody(form)).toEqual({
      name: "Silver customers",
      type: "gold-analytics",
      description: null,
      sourceConfig: { type: "multi-table", tables: ["bronze_customers"] },
      destinationConfig: { silverConfig: { tableName: "silver_customers", primaryKey: "customer_id", surrogateKey: "customer_sk" } },
      transformationConfig: { derivedColumns: [{ name: "email_lower", expression: "LOWER(email)" }] },
    });
  });

  it("builds a gold job with aggregations, group by and joins; round-trips a job unchanged", () => {
    const form = {
      ...emptyTransformForm("gold"),
      name: "Gold",
      tables: ["silver_accounts"],
      tableName: "gold_balances",
      aggregations: [{ column: "balance", function: "SUM" as const, alias: "total_balance" }],
      groupBy: "customer_id, branch",
      joins: [{ table: "silver_customers", on: "customer_id", type: "left" as const }],
    };
    const body = transformJobBody(form);
    expect(body.transformationConfig).toEqual({
      aggregations: [{ column: "balance", function: "SUM", alias: "total_balance" }],
      groupBy: ["customer_id", "branch"],
      joins: [{ table: "silver_customers", on: "customer_id", type: "left" }],
    });
    const job: JobRead = { ...body, id: "g", version: 2, transformationConfig: body.transformationConfig ?? null };
    expect(patchBody(job, transformJobBody(transformFormFromJob(job), job))).toEqual({ version: 2 });
  });
});

describe("problems", () => {
  const error = new ApiError(422, [
    { field: "transformationConfig.derivedColumns[1].expression", msg: "expression refused" },
    { field: "sourceConfig.databaseConfig.tableName", msg: "no such table" },
    { field: "dependsOn[0]", msg: "no job x" },
    { loc: ["body", "name"], msg: "too short" },
  ]);
  it("are placed at the field they name, and the rest is kept", () => {
    const grouped = groupProblems(error);
    expect(problemsAt(grouped, "transformationConfig.derivedColumns.1.expression")).toEqual(["expression refused"]);
    expect(problemsAt(grouped, "transformationConfig.derivedColumns.0")).toEqual([]);
    expect(problemsAt(grouped, "sourceConfig.databaseConfig")).toEqual(["no such table"]);
    expect(problemsAt(grouped, "name")).toEqual(["too short"]);
    expect(otherProblems(grouped, ["name", "sourceConfig", "transformationConfig"])).toEqual(["dependsOn.0: no job x"]);
  });

  it("drop the source kind pydantic puts in the path", () => {
    const grouped = groupProblems(new ApiError(422, [{ field: "sourceConfig.csv.fileConfig.columns.0.rename", msg: "String should match pattern" }, { field: "sourceConfig.sqlite", msg: "x" }]));
    expect(problemsAt(grouped, "sourceConfig.fileConfig.columns.0")).toEqual(["String should match pattern"]);
    expect(grouped["sourceConfig"]).toEqual(["x"]);
  });

  it("are none for an error that is not the API's", () => {
    expect(groupProblems(new Error("network down"))).toEqual({});
  });
});

describe("bronzeTableForSource", () => {
  it("names the bronze table after the source table", () => {
    expect(bronzeTableForSource("dbo.Customer Accounts")).toBe("bronze_customer_accounts");
    expect(bronzeTableForSource("[sales].[Orders]")).toBe("bronze_orders");
  });
});

describe("otherProblems with exact paths", () => {
  it("keeps what is under an exact path that no field shows", () => {
    const grouped = groupProblems(new ApiError(422, [
      { field: "sourceConfig.databaseConfig", msg: "give exactly one of tableName, query or storedProcedure" },
      { field: "sourceConfig.databaseConfig.unknownThing", msg: "extra" },
    ]));
    expect(otherProblems(grouped, [], ["sourceConfig.databaseConfig"])).toEqual(["sourceConfig.databaseConfig.unknownThing: extra"]);
  });
});

describe("expressionVerdict", () => {
  it("says what the API said", () => {
    expect(expressionVerdict({ valid: true, columns: ["email"] }, null)).toEqual({ ok: true, message: "valid; reads email" });
    const refused = new ApiError(422, [{ field: "expression", msg: 'expression "(SELECT 1)" refused: subqueries (SELECT ...) are not allowed' }]);
    expect(expressionVerdict(undefined, refused)).toEqual({ ok: false, message: 'expression "(SELECT 1)" refused: subqueries (SELECT ...) are not allowed' });
    expect(expressionVerdict(undefined, new ApiError(403, "editors only"))).toEqual({ ok: null, message: "could not check the expression: editors only" });
    expect(expressionVerdict(undefined, null)).toEqual({ ok: null, message: "" });
  });
});

describe("knownColumns", () => {
  const assets = [{ table: "bronze_a", columns: [{ name: "id" }, { name: "email" }] }, { table: "bronze_b", columns: [{ name: "id" }, { name: "score" }] }];
  it("are the inputs' columns and the derived columns before, when every input is known and nothing is joined", () => {
    const derived = [{ name: "email_lower", expression: "LOWER(email)" }, { name: "x", expression: "" }];
    expect(knownColumns(["bronze_a", "bronze_b"], 0, assets, derived, 1)).toEqual(["id", "email", "score", "email_lower"]);
    expect(knownColumns(["bronze_a"], 1, assets, derived, 0)).toBeNull();
    expect(knownColumns(["bronze_a", "bronze_new"], 0, assets, derived, 0)).toBeNull();
    expect(knownColumns([], 0, assets, derived, 0)).toBeNull();
  });
});
