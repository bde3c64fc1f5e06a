import { lazy, Suspense, useMemo, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, api, unwrap } from "../api/client";
import {
  bronzeTableForSource,
  databaseFormFromJob,
  databaseJobBody,
  emptyDatabaseForm,
  groupProblems,
  otherProblems,
  parameterKind,
  PARALLEL_SOURCES,
  problemsAt,
  type DatabaseForm,
  type JobRead,
  type SourceMode,
} from "../jobForm";
import { buttonClass, ErrorBox, inputClass, Loading, secondaryButtonClass } from "../ui";
import { ConnectionForm } from "./ConnectionForm";
import { BronzeFields, Field, FieldProblems, NameFields, OtherProblems } from "./jobform/Fields";
import { useSaveJob } from "./jobform/useSaveJob";

// CodeMirror is loaded when the custom query is first shown (the first route stays small).
const SqlEditor = lazy(() => import("./jobform/SqlEditor"));

const DATABASE_TYPES = new Set(["sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite"]);
const DB = "sourceConfig.databaseConfig";
// The fields of databaseConfig this form shows problems at (anything else goes in the list under the form).
const SHOWN = ["connectionId", "tableName", "schema", "query", "storedProcedure", "parameters", "isIncremental", "deltaColumn", "uniqueKey", "batchSize", "partitions", "partitionColumn"];

interface SourceTable { schema: string | null; name: string; kind?: string | null; estimatedRows?: number | null }
interface SourceColumn { name: string; sourceType?: string | null; arrowType?: string | null; nullable?: boolean | null; primaryKey?: boolean | null }
interface Procedure { schema: string | null; name: string; parameters: { name: string; sourceType: string; direction?: string | null }[] }
interface TestResult { success: boolean; message: string; kind?: string | null }

function qualified(item: { schema: string | null; name: string }): string {
  return item.schema ? `${item.schema}.${item.name}` : item.name;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "∅";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Create or edit a database job: the connection (or a new one), Test connection with the
 * server's words, the table (searchable), a custom query (CodeMirror) or a stored procedure
 * with typed parameters, the schema and 10 sample rows, the incremental column, bronze. */
export default function DatabaseJobForm({ workflowId, onDone, job }: { workflowId: string; onDone: () => void; job?: JobRead }) {
  const queryClient = useQueryClient();
  const [form, setForm] = useState<DatabaseForm>(() => (job ? databaseFormFromJob(job) : emptyDatabaseForm()));
  const [creatingConnection, setCreatingConnection] = useState(false);
  const [knownIds, setKnownIds] = useState<string[]>([]);
  const [search, setSearch] = useState("");
  const set = (change: Partial<DatabaseForm>) => setForm((current) => ({ ...current, ...change }));

  const connections = useQuery({
    queryKey: ["connections"],
    queryFn: () => unwrap(api.GET("/api/connections", {})),
  });
  const databaseConnections = (connections.data?.data ?? []).filter((c) => DATABASE_TYPES.has(c.type));
  const connectionId = form.connectionId;
  const connectionQuery = { params: { query: { connectionId } } };

  const test = useMutation({
    mutationFn: () => unwrap(api.POST("/api/test-connection/database", { body: { connectionId } as never })) as Promise<TestResult>,
  });
  const tables = useQuery({
    queryKey: ["source-tables", connectionId],
    queryFn: () => unwrap(api.GET("/api/database/tables", connectionQuery as never)) as Promise<{ data: SourceTable[] }>,
    enabled: Boolean(connectionId) && form.mode === "table",
    retry: false,
  });
  const procedures = useQuery({
    queryKey: ["source-procedures", connectionId],
    queryFn: () => unwrap(api.GET("/api/database/procedures", connectionQuery as never)) as Promise<{ data: Procedure[] }>,
    enabled: Boolean(connectionId) && form.mode === "procedure",
    retry: false,
  });
  const tableQuery = { params: { query: { connectionId, table: form.tableName, ...(form.schema ? { schema: form.schema } : {}) } } };
  const showTable = form.mode === "table" && Boolean(connectionId && form.tableName);
  const schema = useQuery({
    queryKey: ["source-schema", connectionId, form.schema, form.tableName],
    queryFn: () => unwrap(api.GET("/api/database/schema", tableQuery as never)) as Promise<{ columns: SourceColumn[] }>,
    enabled: showTable,
    retry: false,
  });
  const sample = useQuery({
    queryKey: ["source-preview", connectionId, form.schema, form.tableName],
    queryFn: () => unwrap(api.GET("/api/database/preview", { params: { query: { ...tableQuery.params.query, limit: 10 } } } as never)) as Promise<{ columns: SourceColumn[]; rows: Record<string, unknown>[]; truncated: boolean }>,
    enabled: showTable,
    retry: false,
  });

  const save = useSaveJob(workflowId, job, () => databaseJobBody(form, job), onDone);
  const grouped = groupProblems(save.error);
  const at = (path: string) => problemsAt(grouped, path);

  const matching = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return (tables.data?.data ?? []).filter((table) => !needle || qualified(table).toLowerCase().includes(needle));
  }, [tables.data, search]);
  const columns = schema.data?.columns ?? [];
  const selectedProcedure = (procedures.data?.data ?? []).find((p) => qualified(p) === form.storedProcedure);

  function chooseConnection(id: string, type?: string) {
    const connection = databaseConnections.find((c) => c.id === id);
    test.reset();
    set({ connectionId: id, sourceType: type ?? connection?.type ?? "", tableName: "", schema: "", storedProcedure: "", parameters: {}, parameterTypes: {}, deltaColumn: "" });
  }

  function chooseTable(value: string) {
    const table = (tables.data?.data ?? []).find((t) => qualified(t) === value);
    if (!table || (table.name === form.tableName && (table.schema ?? "") === form.schema)) return;
    setForm((current) => ({
      ...current,
      tableName: table.name,
      schema: table.schema ?? "",
      deltaColumn: "",
      bronze: current.bronze.tableName && !current.bronze.tableName.startsWith("bronze_") ? current.bronze : { ...current.bronze, tableName: current.bronze.tableName && job ? current.bronze.tableName : bronzeTableForSource(table.name) },
      name: current.name || `Ingest ${table.name}`,
    }));
  }

  function chooseProcedure(value: string) {
    const procedure = (procedures.data?.data ?? []).find((p) => qualified(p) === value);
    const inputs = (procedure?.parameters ?? []).filter((p) => (p.direction ?? "in").toLowerCase().startsWith("in"));
    set({
      storedProcedure: value,
      parameters: Object.fromEntries(inputs.map((p) => [p.name, ""])),
      parameterTypes: Object.fromEntries(inputs.map((p) => [p.name, p.sourceType])),
    });
  }

  async function connectionCreated() {
    setCreatingConnection(false);
    const fresh = await queryClient.fetchQuery({ queryKey: ["connections"], queryFn: () => unwrap(api.GET("/api/connections", {})) });
    const created = fresh.data.find((c) => !knownIds.includes(c.id) && DATABASE_TYPES.has(c.type));
    if (created) chooseConnection(created.id, created.type);
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  const title = job ? `Edit database job “${job.name}”` : "New database job";
  const modes: [SourceMode, string][] = [["table", "Table"], ["query", "Custom query"], ["procedure", "Stored procedure"]];

  return (
    <div className="mb-6 rounded-lg border border-indigo-300 bg-white p-5">
      <h2 className="mb-3 text-lg font-semibold">{title}</h2>
      {creatingConnection ? <ConnectionForm onDone={connectionCreated} /> : null}
      <form onSubmit={submit} aria-label={job ? `Edit job ${job.name}` : "New database job"}>
        <NameFields name={form.name} description={form.description} onName={(name) => set({ name })} onDescription={(description) => set({ description })} problems={at} />

        <fieldset className="mb-3 rounded border border-slate-300 p-3">
          <legend className="px-1 text-sm font-semibold">Source</legend>
          <div className="flex flex-wrap items-end gap-2">
            <div className="min-w-64 flex-1">
              <label htmlFor="db-connection" className="block text-sm font-medium">Connection</label>
              <select id="db-connection" className={inputClass} value={form.connectionId} aria-describedby="db-connection-problems" onChange={(e) => chooseConnection(e.target.value)}>
                <option value="">{connections.isLoading ? "Loading connections…" : "Choose a connection"}</option>
                {databaseConnections.map((c) => (
                  <option key={c.id} value={c.id}>{c.name} ({c.type})</option>
                ))}
              </select>
            </div>
            {!creatingConnection ? (
              <button type="button" className={secondaryButtonClass} onClick={() => { setKnownIds((connections.data?.data ?? []).map((c) => c.id)); setCreatingConnection(true); }}>
                New connection
              </button>
            ) : null}
            <button type="button" className={secondaryButtonClass} disabled={!connectionId || test.isPending} onClick={() => test.mutate()}>
              {test.isPending ? "Testing…" : "Test connection"}
            </button>
          </div>
          <FieldProblems id="db-connection-problems" messages={[...at(`${DB}.connectionId`), ...at("sourceConfig.type")]} />
          <ErrorBox error={connections.error} />
          {test.data ? (
            <p role="status" data-testid="db-test-result" className={`mt-2 rounded border p-2 text-sm ${test.data.success ? "border-green-300 bg-green-50 text-green-900" : "border-red-300 bg-red-50 text-red-900"}`}>
              {test.data.success ? "Connected: " : `Failed${test.data.kind ? ` (${test.data.kind})` : ""}: `}
              {test.data.message}
            </p>
          ) : null}
          <ErrorBox error={test.error} />

          <div role="radiogroup" aria-label="Read from" className="mt-3 flex gap-4 text-sm">
            {modes.map(([mode, label]) => (
              <label key={mode} className="flex items-center gap-1">
                <input type="radio" name="db-mode" value={mode} checked={form.mode === mode} onChange={() => set({ mode, isIncremental: mode === "procedure" ? false : form.isIncremental })} />
                {label}
              </label>
            ))}
          </div>
          <FieldProblems id="db-mode-problems" messages={grouped[DB] ?? []} />

          {form.mode === "table" ? (
            <div className="mt-2 grid grid-cols-2 gap-3">
              <div>
                <label htmlFor="db-table-search" className="block text-sm font-medium">Search tables</label>
                <input id="db-table-search" type="search" className={inputClass} value={search} disabled={!connectionId} onChange={(e) => setSearch(e.target.value)} />
                <label htmlFor="db-table" className="mt-2 block text-sm font-medium">Source table</label>
                <select
                  id="db-table"
                  size={6}
                  className={inputClass}
                  value={form.tableName ? qualified({ schema: form.schema || null, name: form.tableName }) : ""}
                  aria-describedby="db-table-problems"
                  disabled={!connectionId}
                  onChange={(e) => chooseTable(e.target.value)}
                  // a listbox moved through with the arrow keys does not always report a change
                  onKeyUp={(e) => chooseTable(e.currentTarget.value)}
                >
                  {matching.map((table) => (
                    <option key={qualified(table)} value={qualified(table)}>
                      {qualified(table)}{table.kind && table.kind !== "table" ? ` (${table.kind})` : ""}{typeof table.estimatedRows === "number" ? ` — ~${table.estimatedRows} rows` : ""}
                    </option>
                  ))}
                </select>
                {tables.isLoading && connectionId ? <Loading what="the tables" /> : null}
                {tables.data && !matching.length ? <p className="text-sm">No table matches “{search}”.</p> : null}
                <ErrorBox error={tables.error} />
                <FieldProblems id="db-table-problems" messages={[...at(`${DB}.tableName`), ...at(`${DB}.schema`)]} />
              </div>
              <div>
                {showTable ? (
                  <>
                    <h3 className="text-sm font-semibold">Schema of {form.tableName}</h3>
                    {schema.isLoading ? <Loading what="the schema" /> : null}
                    <ErrorBox error={schema.error} />
                    {columns.length ? (
                      <table className="w-full border-collapse text-xs" aria-label="Source schema">
                        <thead>
                          <tr className="border-b border-slate-300 text-left">
                            <th className="p-1">Column</th>
                            <th className="p-1">Source type</th>
                            <th className="p-1">Nullable</th>
                            <th className="p-1">Key</th>
                          </tr>
                        </thead>
                        <tbody>
                          {columns.map((column) => (
                            <tr key={column.name} className="border-b border-slate-200">
                              <td className="p-1 font-mono">{column.name}</td>
                              <td className="p-1">{column.sourceType ?? column.arrowType ?? "?"}</td>
                              <td className="p-1">{column.nullable === false ? "no" : "yes"}</td>
                              <td className="p-1">{column.primaryKey ? "primary" : ""}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    ) : null}
                  </>
                ) : <p className="text-sm text-slate-700">Choose a table to see its schema and a sample of its rows.</p>}
              </div>
            </div>
          ) : null}

          {form.mode === "query" ? (
            <div className="mt-2">
              <p id="db-query-label" className="block text-sm font-medium">Custom query (read-only: one SELECT)</p>
              <Suspense fallback={<Loading what="the query editor" />}>
                <SqlEditor id="db-query" value={form.query} onChange={(query) => set({ query })} labelledBy="db-query-label" describedBy="db-query-problems" dialect={form.sourceType} />
              </Suspense>
              <FieldProblems id="db-query-problems" messages={at(`${DB}.query`)} />
            </div>
          ) : null}

          {form.mode === "procedure" ? (
            <div className="mt-2 grid grid-cols-2 gap-3">
              <div>
                <label htmlFor="db-procedure" className="block text-sm font-medium">Procedure</label>
                <select id="db-procedure" className={inputClass} value={form.storedProcedure} aria-describedby="db-procedure-problems" disabled={!connectionId} onChange={(e) => chooseProcedure(e.target.value)}>
                  <option value="">{procedures.isLoading ? "Loading procedures…" : "Choose a procedure"}</option>
                  {form.storedProcedure && !selectedProcedure ? <option value={form.storedProcedure}>{form.storedProcedure}</option> : null}
                  {(procedures.data?.data ?? []).map((p) => (
                    <option key={qualified(p)} value={qualified(p)}>{qualified(p)}</option>
                  ))}
                </select>
                {procedures.data && !procedures.data.data.length ? <p className="text-sm">This database has no stored procedures FlowForge can call.</p> : null}
                <ErrorBox error={procedures.error} />
                <FieldProblems id="db-procedure-problems" messages={at(`${DB}.storedProcedure`)} />
              </div>
              <fieldset>
                <legend className="text-sm font-medium">Parameters</legend>
                {!Object.keys(form.parameters).length ? <p className="text-sm text-slate-700">None.</p> : null}
                {Object.keys(form.parameters).map((name) => {
                  const sourceType = form.parameterTypes[name] ?? "text";
                  const kind = parameterKind(sourceType);
                  const id = `db-param-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
                  const setParameter = (text: string) => set({ parameters: { ...form.parameters, [name]: text } });
                  return (
                    <div key={name} className="mb-1">
                      <label htmlFor={id} className="block text-sm">{name} <span className="text-xs text-slate-700">({sourceType})</span></label>
                      {kind === "boolean" ? (
                        <select id={id} className={inputClass} value={form.parameters[name]} onChange={(e) => setParameter(e.target.value)}>
                          <option value="">null</option>
                          <option value="true">true</option>
                          <option value="false">false</option>
                        </select>
                      ) : (
                        <input
                          id={id}
                          className={inputClass}
                          type={kind === "number" ? "number" : kind === "date" ? "date" : kind === "datetime" ? "datetime-local" : "text"}
                          step={kind === "number" ? "any" : undefined}
                          value={form.parameters[name]}
                          onChange={(e) => setParameter(e.target.value)}
                        />
                      )}
                    </div>
                  );
                })}
                <FieldProblems id="db-parameters-problems" messages={at(`${DB}.parameters`)} />
              </fieldset>
            </div>
          ) : null}

          {showTable && (sample.data || sample.isLoading || sample.error) ? (
            <div className="mt-3">
              <h3 className="text-sm font-semibold">Sample rows</h3>
              {sample.isLoading ? <Loading what="the sample" /> : null}
              <ErrorBox error={sample.error} />
              {sample.data ? (
                <div className="max-h-64 overflow-auto rounded border border-slate-300" tabIndex={0} role="region" aria-label="Sample rows">
                  <table className="border-collapse text-xs">
                    <thead className="bg-slate-100">
                      <tr>{sample.data.columns.map((c) => <th key={c.name} className="p-1 text-left font-mono">{c.name}</th>)}</tr>
                    </thead>
                    <tbody>
                      {sample.data.rows.map((row, i) => (
                        <tr key={i} className="border-t border-slate-200">{sample.data.columns.map((c) => <td key={c.name} className="whitespace-nowrap p-1">{cell(row[c.name])}</td>)}</tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              ) : null}
            </div>
          ) : null}
        </fieldset>

        <fieldset className="mb-3 rounded border border-slate-300 p-3">
          <legend className="px-1 text-sm font-semibold">Loading</legend>
          <div className="grid grid-cols-2 gap-3">
            <div>
              <label className="flex items-center gap-2 text-sm">
                <input type="checkbox" checked={form.isIncremental} disabled={form.mode === "procedure"} aria-describedby="db-incremental-problems" onChange={(e) => set({ isIncremental: e.target.checked })} />
                Load incrementally (only rows past the last watermark)
              </label>
              <FieldProblems id="db-incremental-problems" messages={at(`${DB}.isIncremental`)} />
            </div>
            {form.isIncremental ? (
              <Field id="db-delta-column" label="Watermark column" problems={at(`${DB}.deltaColumn`)} hint="A column that only grows: an updated-at time or an increasing id.">
                {columns.length && form.mode === "table" ? (
                  <select id="db-delta-column" className={inputClass} value={form.deltaColumn} aria-describedby="db-delta-column-problems" onChange={(e) => set({ deltaColumn: e.target.value })}>
                    <option value="">Choose a column</option>
                    {columns.map((c) => <option key={c.name} value={c.name}>{c.name} ({c.sourceType ?? c.arrowType})</option>)}
                  </select>
                ) : (
                  <input id="db-delta-column" className={inputClass} value={form.deltaColumn} aria-describedby="db-delta-column-problems" onChange={(e) => set({ deltaColumn: e.target.value })} />
                )}
              </Field>
            ) : <div />}
            <Field id="db-unique-key" label="Unique key (columns, comma-separated)" problems={at(`${DB}.uniqueKey`)}>
              <input id="db-unique-key" className={inputClass} value={form.uniqueKey} aria-describedby="db-unique-key-problems" onChange={(e) => set({ uniqueKey: e.target.value })} />
            </Field>
            <Field id="db-batch-size" label="Batch size (rows)" problems={at(`${DB}.batchSize`)}>
              <input id="db-batch-size" className={inputClass} inputMode="numeric" placeholder="10000" value={form.batchSize} aria-describedby="db-batch-size-problems" onChange={(e) => set({ batchSize: e.target.value })} />
            </Field>
            {form.mode === "table" && PARALLEL_SOURCES.has(form.sourceType) ? (
              <>
                <Field id="db-partitions" label="Parallel ranges" problems={at(`${DB}.partitions`)} hint="Read the table in this many key ranges at once (1 to 16), committed once. Each range is a query on the source.">
                  <input id="db-partitions" className={inputClass} inputMode="numeric" placeholder="1" value={form.partitions} aria-describedby="db-partitions-problems" onChange={(e) => set({ partitions: e.target.value })} />
                </Field>
                <Field id="db-partition-column" label="Range column" problems={at(`${DB}.partitionColumn`)} hint="An indexed integer column; empty means the table's integer primary key.">
                  {columns.length ? (
                    <select id="db-partition-column" className={inputClass} value={form.partitionColumn} aria-describedby="db-partition-column-problems" onChange={(e) => set({ partitionColumn: e.target.value })}>
                      <option value="">The primary key</option>
                      {columns.map((c) => <option key={c.name} value={c.name}>{c.name} ({c.sourceType ?? c.arrowType})</option>)}
                    </select>
                  ) : (
                    <input id="db-partition-column" className={inputClass} value={form.partitionColumn} aria-describedby="db-partition-column-problems" onChange={(e) => set({ partitionColumn: e.target.value })} />
                  )}
                </Field>
              </>
            ) : null}
          </div>
        </fieldset>

        <BronzeFields value={form.bronze} onChange={(bronze) => set({ bronze })} grouped={grouped} />

        {save.isError && !(save.error instanceof ApiError && save.error.problems.length) ? <ErrorBox error={save.error} /> : null}
        <OtherProblems messages={otherProblems(grouped, ["name", "description", "destinationConfig", "sourceConfig.type", ...SHOWN.map((key) => `${DB}.${key}`)], [DB])} />
        <div className="flex gap-2">
          <button type="button" className={secondaryButtonClass} onClick={onDone}>Cancel</button>
          <button type="submit" className={buttonClass} disabled={save.isPending}>{save.isPending ? "Saving…" : job ? "Save changes" : "Create job"}</button>
        </div>
      </form>
    </div>
  );
}
