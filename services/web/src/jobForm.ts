/** The job forms' logic, apart from React: the job body from a form's state (and back, to
 * edit a job), the PATCH body of an edit, and the API's problems placed at the fields they
 * concern. The API decides; this only says it where it belongs. */
import { ApiError } from "./api/client";

type Json = Record<string, unknown>;

/** What a job's create (POST) takes; an edit's PATCH sends the top-level fields that changed. */
export interface JobBody {
  name: string;
  type: string;
  description?: string | null;
  sourceConfig: Json;
  destinationConfig: Json;
  transformationConfig?: Json | null;
  dependsOn?: string[] | null;
}

/** A job as the API returns it (only what the forms read): its body, id and version. */
export interface JobRead extends JobBody {
  id?: string;
  version?: number;
}

const TOP_LEVEL = ["name", "type", "description", "sourceConfig", "destinationConfig", "transformationConfig", "dependsOn"] as const;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value as Json).sort().map((key) => [key, canonical((value as Json)[key])]));
  }
  return value ?? null;
}

/** An edit's PATCH body: the top-level fields that differ from the job as read (`null`
 * removes an optional one), with the version read, so that a change made meanwhile by
 * someone else is a 409, not overwritten. */
export function patchBody(job: JobRead, next: JobBody): Json {
  const out: Json = {};
  for (const key of TOP_LEVEL) {
    const before = job[key] ?? null;
    const after = next[key] ?? null;
    if (!same(before, after)) out[key] = after;
  }
  out.version = job.version;
  return out;
}

/** `original` with `values` laid over it: an empty value removes the key; a value equal to
 * the API's default is left out unless the original had the key (so an unchanged job sends
 * back exactly what it was given). */
export function overlay(original: Json | null | undefined, values: Json, defaults: Json = {}): Json {
  const out: Json = { ...(original ?? {}) };
  for (const [key, value] of Object.entries(values)) {
    const empty = value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
    if (empty) delete out[key];
    else if (!(key in (original ?? {})) && key in defaults && same(defaults[key], value)) delete out[key];
    else out[key] = value;
  }
  return out;
}

/** `a, b ,c` -> `["a", "b", "c"]` */
export function splitList(text: string): string[] {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

export function joinList(value: unknown): string {
  if (Array.isArray(value)) return value.join(", ");
  return typeof value === "string" ? value : "";
}

// ---- problems ----------------------------------------------------------------------------

/** `transformationConfig.derivedColumns[0].expression` -> `transformationConfig.derivedColumns.0.expression`;
 * `sourceConfig.csv.fileConfig.columns.0.rename` -> `sourceConfig.fileConfig.columns.0.rename` */
export function normalizeField(field: string): string {
  return field
    .replace(/\[(\d+)\]/g, ".$1")
    .replace(/^\./, "")
    // pydantic names the source kind it tried in the path: sourceConfig.csv.fileConfig -> sourceConfig.fileConfig
    .replace(/^sourceConfig\.(csv|sql-server|postgresql|mysql|oracle|snowflake|sqlite|multi-table)(\.|$)/, "sourceConfig$2");
}

/** The API's problems of an error, by normalized field path (`""`: the whole request). */
export function groupProblems(error: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!(error instanceof ApiError)) return out;
  for (const problem of error.problems) {
    const raw = problem.field ?? (problem.loc ? problem.loc.slice(1).join(".") : "");
    (out[normalizeField(raw)] ??= []).push(problem.msg);
  }
  return out;
}

function under(key: string, path: string): boolean {
  return key === path || key.startsWith(`${path}.`);
}

/** Messages for the field at `path` and anything under it. */
export function problemsAt(grouped: Record<string, string[]>, path: string): string[] {
  return Object.entries(grouped).filter(([key]) => under(key, path)).flatMap(([, messages]) => messages);
}

/** Messages no shown field covers, with the field they name: shown together so that nothing
 * the API said is lost. `exact` paths are shown at their own field only (not what is under
 * them). */
export function otherProblems(grouped: Record<string, string[]>, shown: string[], exact: string[] = []): string[] {
  return Object.entries(grouped)
    .filter(([key]) => !shown.some((path) => under(key, path)) && !exact.includes(key))
    .flatMap(([key, messages]) => messages.map((message) => (key ? `${key}: ${message}` : message)));
}

// ---- bronze ------------------------------------------------------------------------------

export interface BronzeSettings {
  tableName: string;
  writeMode: "append" | "overwrite";
  auditColumns: boolean;
  sharedAppend: boolean;
}

export const BRONZE_DEFAULTS: Json = { format: "delta", writeMode: "append", auditColumns: true, sharedAppend: false };

export function bronzeFromJob(job: JobRead | null | undefined, tableName = ""): BronzeSettings {
  const bronze = ((job?.destinationConfig as Json | undefined)?.bronzeConfig ?? {}) as Json;
  return {
    tableName: (bronze.tableName as string) ?? tableName,
    writeMode: (bronze.writeMode as "append" | "overwrite") ?? "append",
    auditColumns: (bronze.auditColumns as boolean) ?? true,
    sharedAppend: (bronze.sharedAppend as boolean) ?? false,
  };
}

export function destinationForBronze(settings: BronzeSettings, job?: JobRead | null): Json {
  const original = ((job?.destinationConfig as Json | undefined)?.bronzeConfig ?? null) as Json | null;
  return { bronzeConfig: overlay(original, { ...settings }, BRONZE_DEFAULTS) };
}

// ---- CSV ---------------------------------------------------------------------------------

export interface CsvColumn {
  name: string;
  type?: string | null;
  format?: string | null;
  rename?: string | null;
  [key: string]: unknown;
}

/** An edited CSV job: its stored columns with the user's type, format and name changes. */
export function csvJobBody(job: JobRead, name: string, description: string, bronze: BronzeSettings, columns: CsvColumn[]): JobBody {
  const source = job.sourceConfig as { type: string; fileConfig: Json };
  const edited = columns.map((column) => {
    const clean: Json = { ...column };
    for (const key of ["type", "format", "rename"]) if (!clean[key]) delete clean[key];
    return clean;
  });
  return {
    ...job,
    name,
    description: description.trim() || null,
    sourceConfig: { ...source, fileConfig: overlay(source.fileConfig, { columns: edited }) },
    destinationConfig: destinationForBronze(bronze, job),
  };
}

// ---- database ----------------------------------------------------------------------------

export type SourceMode = "table" | "query" | "procedure";

export interface DatabaseForm {
  name: string;
  description: string;
  connectionId: string;
  sourceType: string;
  mode: SourceMode;
  schema: string;
  tableName: string;
  query: string;
  storedProcedure: string;
  /** Procedure parameters as typed, and the source type of each (to send numbers as numbers). */
  parameters: Record<string, string>;
  parameterTypes: Record<string, string>;
  isIncremental: boolean;
  deltaColumn: string;
  uniqueKey: string;
  batchSize: string;
  /** A table read in key ranges at once (PostgreSQL, MySQL/MariaDB): how many, and on which column. */
  partitions: string;
  partitionColumn: string;
  bronze: BronzeSettings;
}

export function emptyDatabaseForm(): DatabaseForm {
  return {
    name: "",
    description: "",
    connectionId: "",
    sourceType: "",
    mode: "table",
    schema: "",
    tableName: "",
    query: "",
    storedProcedure: "",
    parameters: {},
    parameterTypes: {},
    isIncremental: false,
    deltaColumn: "",
    uniqueKey: "",
    batchSize: "",
    partitions: "",
    partitionColumn: "",
    bronze: bronzeFromJob(null),
  };
}

export function databaseFormFromJob(job: JobRead): DatabaseForm {
  const source = job.sourceConfig as { type: string; databaseConfig: Json };
  const db = source.databaseConfig;
  const parameters = (db.parameters ?? {}) as Record<string, unknown>;
  return {
    name: job.name,
    description: job.description ?? "",
    connectionId: String(db.connectionId ?? ""),
    sourceType: source.type,
    mode: db.storedProcedure ? "procedure" : db.query ? "query" : "table",
    schema: (db.schema as string) ?? "",
    tableName: (db.tableName as string) ?? "",
    query: (db.query as string) ?? "",
    storedProcedure: (db.storedProcedure as string) ?? "",
    parameters: Object.fromEntries(Object.entries(parameters).map(([key, value]) => [key, value === null || value === undefined ? "" : String(value)])),
    parameterTypes: Object.fromEntries(Object.entries(parameters).map(([key, value]) => [key, typeof value === "number" ? "numeric" : typeof value === "boolean" ? "boolean" : "text"])),
    isIncremental: Boolean(db.isIncremental),
    deltaColumn: (db.deltaColumn as string) ?? "",
    uniqueKey: joinList(db.uniqueKey),
    batchSize: db.batchSize === undefined ? "" : String(db.batchSize),
    partitions: db.partitions === undefined || db.partitions === 1 ? "" : String(db.partitions),
    partitionColumn: (db.partitionColumn as string) ?? "",
    bronze: bronzeFromJob(job),
  };
}

/** The kind of input a procedure parameter of this source type takes. */
export function parameterKind(sourceType: string): "number" | "boolean" | "date" | "datetime" | "text" {
  const type = sourceType.toLowerCase();
  if (/^(bit|bool|boolean)\b/.test(type)) return "boolean";
  if (/(int|numeric|decimal|number|float|real|double|money)/.test(type)) return "number";
  if (/(timestamp|datetime)/.test(type)) return "datetime";
  if (/^date\b/.test(type)) return "date";
  return "text";
}

/** A parameter as typed, in the JSON type its source type means (an empty input is null). */
export function typedParameter(text: string, sourceType: string): string | number | boolean | null {
  if (text === "") return null;
  const kind = parameterKind(sourceType);
  if (kind === "boolean") return text === "true";
  if (kind === "number") {
    const number = Number(text);
    return Number.isFinite(number) ? number : text; // the API says why a non-number is wrong
  }
  return text;
}

const DATABASE_DEFAULTS: Json = { isIncremental: false, batchSize: 10_000, partitions: 1 };

/** The sources whose table reads can be split into key ranges read at once. */
export const PARALLEL_SOURCES = new Set(["postgresql", "mysql"]);

/** A whole number as typed, or the text as it is (the API says why it is wrong); "" stays "". */
function wholeNumber(text: string): number | string {
  const trimmed = text.trim();
  return trimmed === "" ? "" : Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
}

export function databaseJobBody(form: DatabaseForm, job?: JobRead | null): JobBody {
  const original = job ? ((job.sourceConfig as { databaseConfig?: Json }).databaseConfig ?? null) : null;
  const parallel = form.mode === "table" && PARALLEL_SOURCES.has(form.sourceType);
  const values: Json = {
    connectionId: form.connectionId,
    schema: form.schema.trim(),
    tableName: form.mode === "table" ? form.tableName.trim() : "",
    query: form.mode === "query" ? form.query : "",
    storedProcedure: form.mode === "procedure" ? form.storedProcedure.trim() : "",
    parameters:
      form.mode === "procedure" && Object.keys(form.parameters).length
        ? Object.fromEntries(Object.entries(form.parameters).map(([key, text]) => [key, typedParameter(text, form.parameterTypes[key] ?? "text")]))
        : "",
    isIncremental: form.isIncremental,
    deltaColumn: form.isIncremental ? form.deltaColumn.trim() : "",
    uniqueKey: splitList(form.uniqueKey),
    batchSize: wholeNumber(form.batchSize),
    partitions: parallel ? wholeNumber(form.partitions) : "",
    partitionColumn: parallel ? form.partitionColumn.trim() : "",
  };
  const body: JobBody = {
    ...(job ?? {}),
    name: form.name.trim(),
    type: "database",
    description: form.description.trim() || null,
    sourceConfig: { type: form.sourceType, databaseConfig: overlay(original, values, DATABASE_DEFAULTS) },
    destinationConfig: destinationForBronze(form.bronze, job),
  };
  return body;
}

/** A bronze table name for a source table: `dbo.Customer Accounts` -> `bronze_customer_accounts`. */
export function bronzeTableForSource(table: string): string {
  const last = table.split(".").pop() ?? table;
  const stem = last.replace(/[[\]"`]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return `bronze_${stem || "table"}`;
}

// ---- silver / gold -----------------------------------------------------------------------

export interface DerivedColumn {
  name: string;
  expression: string;
}

export interface AggregationRow {
  column: string;
  function: "SUM" | "COUNT" | "AVG" | "MIN" | "MAX" | "COUNT_DISTINCT";
  alias: string;
}

export interface JoinRow {
  table: string;
  on: string;
  type: "inner" | "left" | "right" | "full";
}

export interface TransformForm {
  name: string;
  description: string;
  tables: string[];
  layer: "silver" | "gold";
  tableName: string;
  mergeStrategy: "merge" | "overwrite" | "append";
  primaryKey: string;
  surrogateKey: string;
  dedupe: boolean;
  deltaColumn: string;
  materialization: "table" | "view";
  aggregations: AggregationRow[];
  groupBy: string;
  joins: JoinRow[];
  derived: DerivedColumn[];
  filters: string[];
}

export function emptyTransformForm(layer: "silver" | "gold" = "silver"): TransformForm {
  return {
    name: "",
    description: "",
    tables: [],
    layer,
    tableName: "",
    mergeStrategy: "merge",
    primaryKey: "",
    surrogateKey: "",
    dedupe: true,
    deltaColumn: "",
    materialization: "table",
    aggregations: [],
    groupBy: "",
    joins: [],
    derived: [],
    filters: [],
  };
}

export function transformFormFromJob(job: JobRead): TransformForm {
  const destination = job.destinationConfig as { silverConfig?: Json; goldConfig?: Json };
  const transformation = (job.transformationConfig ?? {}) as Json;
  const silver = destination.silverConfig;
  const gold = destination.goldConfig ?? {};
  const config = silver ?? gold;
  return {
    name: job.name,
    description: job.description ?? "",
    tables: ((job.sourceConfig as { tables?: string[] }).tables ?? []).slice(),
    layer: silver ? "silver" : "gold",
    tableName: (config.tableName as string) ?? "",
    mergeStrategy: ((silver?.mergeStrategy as TransformForm["mergeStrategy"]) ?? "merge"),
    primaryKey: joinList(silver?.primaryKey),
    surrogateKey: (silver?.surrogateKey as string) ?? "",
    dedupe: (silver?.dedupe as boolean) ?? true,
    deltaColumn: (silver?.deltaColumn as string) ?? "",
    materialization: ((gold.materialization as "table" | "view") ?? "table"),
    aggregations: ((transformation.aggregations as AggregationRow[]) ?? []).map((row) => ({ ...row })),
    groupBy: joinList(transformation.groupBy),
    joins: ((transformation.joins as { table: string; on: string | string[]; type?: JoinRow["type"] }[]) ?? []).map((row) => ({ table: row.table, on: joinList(row.on), type: row.type ?? "left" })),
    derived: ((transformation.derivedColumns as DerivedColumn[]) ?? []).map((row) => ({ ...row })),
    filters: ((transformation.filters as string[]) ?? []).slice(),
  };
}

const SILVER_DEFAULTS: Json = { mergeStrategy: "merge", dedupe: true };
const GOLD_DEFAULTS: Json = { materialization: "table", rebuild: "full" };

/** One key column is sent as a string, several as a list (the contract takes both). */
function keyValue(text: string): string | string[] {
  const parts = splitList(text);
  return parts.length === 1 ? parts[0] : parts;
}

export function transformJobBody(form: TransformForm, job?: JobRead | null): JobBody {
  const destination = (job?.destinationConfig ?? {}) as { silverConfig?: Json; goldConfig?: Json };
  const transformation = (job?.transformationConfig ?? null) as Json | null;
  let destinationConfig: Json;
  if (form.layer === "silver") {
    destinationConfig = {
      silverConfig: overlay(
        destination.silverConfig,
        {
          tableName: form.tableName.trim(),
          mergeStrategy: form.mergeStrategy,
          primaryKey: keyValue(form.primaryKey),
          surrogateKey: form.surrogateKey.trim(),
          dedupe: form.dedupe,
          deltaColumn: form.deltaColumn.trim(),
        },
        SILVER_DEFAULTS,
      ),
    };
  } else {
    destinationConfig = {
      goldConfig: overlay(
        destination.goldConfig,
        {
          tableName: form.tableName.trim(),
          materialization: form.materialization,
          // said explicitly only when the original said it; the API refuses a false one with aggregations
        },
        GOLD_DEFAULTS,
      ),
    };
  }
  const gold = form.layer === "gold";
  const values: Json = {
    derivedColumns: form.derived.filter((row) => row.name.trim() || row.expression.trim()).map((row) => ({ name: row.name.trim(), expression: row.expression })),
    filters: form.filters.filter((text) => text.trim()),
    aggregations: gold ? form.aggregations.filter((row) => row.alias.trim() || row.column.trim()).map((row) => ({ column: row.column.trim(), function: row.function, alias: row.alias.trim() })) : [],
    groupBy: gold ? splitList(form.groupBy) : [],
    joins: gold ? form.joins.filter((row) => row.table.trim()).map((row) => ({ table: row.table.trim(), on: keyValue(row.on), type: row.type })) : [],
  };
  const merged = overlay(transformation, values);
  return {
    ...(job ?? {}),
    name: form.name.trim(),
    type: "gold-analytics",
    description: form.description.trim() || null,
    sourceConfig: { type: "multi-table", tables: form.tables },
    destinationConfig,
    transformationConfig: Object.keys(merged).length ? merged : null,
  };
}

/** The form-field paths the transform form shows problems at. */
export function derivedExpressionPath(index: number): string {
  return `transformationConfig.derivedColumns.${index}.expression`;
}

// ---- expressions checked as typed --------------------------------------------------------

export interface Verdict {
  /** true: the API accepts it; false: it refuses it (message: its words); null: unknown. */
  ok: boolean | null;
  message: string;
}

/** What the API's answer to POST /api/validate/expression says, in words. */
export function expressionVerdict(data: { valid: boolean; columns: string[] } | undefined, error: unknown): Verdict {
  if (error instanceof ApiError && error.status === 422) {
    const grouped = groupProblems(error);
    const messages = problemsAt(grouped, "expression");
    return { ok: false, message: (messages.length ? messages : Object.values(grouped).flat()).join("; ") || error.message };
  }
  if (error) return { ok: null, message: `could not check the expression: ${error instanceof Error ? error.message : String(error)}` };
  if (!data) return { ok: null, message: "" };
  return { ok: true, message: data.columns.length ? `valid; reads ${data.columns.join(", ")}` : "valid" };
}

interface AssetLike {
  table: string;
  columns: { name: string }[];
}

/** The columns an expression may name, as the save's check knows them: every input table is
 * in the catalog (columns as its last run wrote them) and there is no join; derived columns
 * before `index` count too. null when not known (any column is accepted until the run). */
export function knownColumns(tables: string[], joins: number, assets: AssetLike[] | undefined, derived: DerivedColumn[], index: number): string[] | null {
  if (!tables.length || joins > 0 || !assets) return null;
  const columns: string[] = [];
  for (const table of tables) {
    const asset = assets.find((a) => a.table === table);
    if (!asset || !asset.columns.length) return null;
    for (const column of asset.columns) if (!columns.includes(column.name)) columns.push(column.name);
  }
  for (const row of derived.slice(0, index)) {
    const name = row.name.trim();
    if (name && !columns.includes(name)) columns.push(name);
  }
  return columns;
}
