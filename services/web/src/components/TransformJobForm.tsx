import { lazy, Suspense, useEffect, useState, type FormEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { ApiError, api, unwrap } from "../api/client";
import {
  emptyTransformForm,
  expressionVerdict,
  groupProblems,
  knownColumns,
  otherProblems,
  problemsAt,
  splitList,
  transformFormFromJob,
  transformJobBody,
  type AggregationRow,
  type JobRead,
  type JoinRow,
  type TransformForm,
} from "../jobForm";
import { buttonClass, ErrorBox, inputClass, secondaryButtonClass } from "../ui";
import { Field, FieldProblems, NameFields, OtherProblems } from "./jobform/Fields";
import { useSaveJob } from "./jobform/useSaveJob";

// CodeMirror, loaded with the first expression shown (not with the app).
const SqlEditor = lazy(() => import("./jobform/SqlEditor"));

const FUNCTIONS: AggregationRow["function"][] = ["SUM", "COUNT", "AVG", "MIN", "MAX", "COUNT_DISTINCT"];
const JOIN_TYPES: JoinRow["type"][] = ["left", "inner", "right", "full"];
const T = "transformationConfig";
const DEBOUNCE_MS = 400;

/** An expression checked by the API's own rule as it is typed (debounced). */
function useExpressionCheck(expression: string, columns: string[] | null) {
  const [settled, setSettled] = useState(expression);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(expression), DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [expression]);
  const check = useQuery({
    queryKey: ["expression-check", settled, columns],
    queryFn: () => unwrap(api.POST("/api/validate/expression", { body: { expression: settled, ...(columns ? { columns } : {}) } as never })) as Promise<{ valid: boolean; columns: string[] }>,
    enabled: settled.trim() !== "",
    retry: false,
    staleTime: Infinity,
  });
  const pending = settled !== expression || check.isFetching;
  return { pending, verdict: settled.trim() ? expressionVerdict(check.data, check.error) : { ok: null, message: "" } };
}

function ExpressionInput({ id, label, value, onChange, columns, saveProblems }: { id: string; label: string; value: string; onChange: (value: string) => void; columns: string[] | null; saveProblems: string[] }) {
  const { pending, verdict } = useExpressionCheck(value, columns);
  const messages = saveProblems.filter((message) => message !== verdict.message);
  return (
    <div className="flex-1">
      <p id={`${id}-label`} className="block text-sm font-medium">{label}</p>
      <Suspense fallback={<input className={`${inputClass} font-mono`} value={value} readOnly aria-labelledby={`${id}-label`} />}>
        <SqlEditor
          id={id}
          value={value}
          onChange={onChange}
          labelledBy={`${id}-label`}
          describedBy={`${id}-check ${id}-problems`}
          dialect="duckdb"
          minLines={1}
          singleLine
          invalid={verdict.ok === false || messages.length > 0}
        />
      </Suspense>
      <p id={`${id}-check`} data-testid={`${id}-check`} aria-live="polite" className={`text-sm ${verdict.ok === false ? "text-red-800" : verdict.ok ? "text-green-800" : "text-slate-700"}`}>
        {value.trim() ? (pending ? "Checking…" : verdict.message) : ""}
      </p>
      <FieldProblems id={`${id}-problems`} messages={messages} />
    </div>
  );
}

/** Create or edit a silver or gold job: its input tables, the table it writes and how
 * (silver: merge strategy, keys, dedupe; gold: aggregations, group by, joins), derived
 * columns and filters checked as they are typed by the API's own validation. */
export default function TransformJobForm({ workflowId, onDone, job, layer = "silver", tables }: { workflowId: string; onDone: () => void; job?: JobRead; layer?: "silver" | "gold"; tables: string[] }) {
  const [form, setForm] = useState<TransformForm>(() => (job ? transformFormFromJob(job) : emptyTransformForm(layer)));
  const [otherTables, setOtherTables] = useState("");
  const set = (change: Partial<TransformForm>) => setForm((current) => ({ ...current, ...change }));
  const assets = useQuery({
    queryKey: ["assets-all"],
    queryFn: () => unwrap(api.GET("/api/catalog/assets", {})),
  });
  const ownTable = job ? transformFormFromJob(job).tableName : "";
  const choices = [...new Set([...tables, ...(assets.data?.data ?? []).map((a) => a.table), ...form.tables])].filter((table) => table !== ownTable).sort();
  const inputTables = [...new Set([...form.tables, ...splitList(otherTables)])];
  const assetColumns = assets.data?.data as unknown as { table: string; columns: { name: string }[] }[] | undefined;

  const save = useSaveJob(workflowId, job, () => transformJobBody({ ...form, tables: inputTables }, job), onDone);
  const grouped = groupProblems(save.error);
  const at = (path: string) => problemsAt(grouped, path);
  const config = form.layer === "silver" ? "destinationConfig.silverConfig" : "destinationConfig.goldConfig";

  function updateRow<K extends "derived" | "aggregations" | "joins">(key: K, index: number, change: Partial<TransformForm[K][number]>) {
    setForm((current) => ({ ...current, [key]: (current[key] as object[]).map((row, i) => (i === index ? { ...row, ...change } : row)) }));
  }
  function removeRow(key: "derived" | "aggregations" | "joins" | "filters", index: number) {
    setForm((current) => ({ ...current, [key]: (current[key] as unknown[]).filter((_, i) => i !== index) }));
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  const title = job ? `Edit ${form.layer} job “${job.name}”` : `New ${form.layer} job`;
  // Where this form shows the API's problems; anything else is listed under the form.
  const shownUnder = [
    "name",
    "description",
    "sourceConfig",
    ...["tableName", "mergeStrategy", "primaryKey", "surrogateKey", "deltaColumn", "dedupe", "materialization", "aggregationEnabled", "denormalizationEnabled"].map((key) => `${config}.${key}`),
    `${T}.groupBy`,
    ...form.derived.map((_, i) => `${T}.derivedColumns.${i}`),
    ...form.filters.map((_, i) => `${T}.filters.${i}`),
    ...form.aggregations.flatMap((_, i) => ["column", "function", "alias"].map((key) => `${T}.aggregations.${i}.${key}`)),
    ...form.joins.flatMap((_, i) => ["table", "on"].map((key) => `${T}.joins.${i}.${key}`)),
  ];

  return (
    <form onSubmit={submit} aria-label={job ? `Edit job ${job.name}` : `New ${form.layer} job`} className="mb-6 rounded-lg border border-indigo-300 bg-white p-5">
      <h2 className="mb-3 text-lg font-semibold">{title}</h2>
      <NameFields name={form.name} description={form.description} onName={(name) => set({ name })} onDescription={(description) => set({ description })} problems={at} />

      <fieldset className="mb-3 rounded border border-slate-300 p-3">
        <legend className="px-1 text-sm font-semibold">Reads</legend>
        <div className="flex flex-wrap gap-x-4 gap-y-1 text-sm">
          {choices.map((table) => (
            <label key={table} className="flex items-center gap-1 font-mono">
              <input
                type="checkbox"
                checked={form.tables.includes(table)}
                onChange={(e) => set({ tables: e.target.checked ? [...form.tables, table] : form.tables.filter((t) => t !== table) })}
              />
              {table}
            </label>
          ))}
          {!choices.length ? <p>No table yet: add the jobs that write this job's inputs first.</p> : null}
        </div>
        <div className="mt-2 max-w-md">
          <Field id="other-tables" label="Other input tables (comma-separated)" problems={at("sourceConfig")}>
            <input id="other-tables" className={inputClass} value={otherTables} aria-describedby="other-tables-problems" onChange={(e) => setOtherTables(e.target.value)} />
          </Field>
        </div>
      </fieldset>

      <fieldset className="mb-3 rounded border border-slate-300 p-3">
        <legend className="px-1 text-sm font-semibold">Writes</legend>
        <div className="grid grid-cols-3 gap-3">
          <Field id="target-layer" label="Layer">
            <select id="target-layer" className={inputClass} value={form.layer} onChange={(e) => set({ layer: e.target.value as TransformForm["layer"] })}>
              <option value="silver">silver (cleaned, merged)</option>
              <option value="gold">gold (aggregated, joined)</option>
            </select>
          </Field>
          <Field id="target-table" label={`${form.layer === "silver" ? "Silver" : "Gold"} table`} problems={[...at(`${config}.tableName`), ...(grouped.destinationConfig ?? []), ...(grouped[config] ?? [])]}>
            <input id="target-table" className={inputClass} value={form.tableName} aria-describedby="target-table-problems" onChange={(e) => set({ tableName: e.target.value })} />
          </Field>
          {form.layer === "silver" ? (
            <>
              <Field id="merge-strategy" label="Merge strategy" problems={at(`${config}.mergeStrategy`)}>
                <select id="merge-strategy" className={inputClass} value={form.mergeStrategy} aria-describedby="merge-strategy-problems" onChange={(e) => set({ mergeStrategy: e.target.value as TransformForm["mergeStrategy"] })}>
                  <option value="merge">merge (upsert on the key)</option>
                  <option value="overwrite">overwrite</option>
                  <option value="append">append</option>
                </select>
              </Field>
              <Field id="primary-key" label="Merge key (columns, comma-separated)" problems={at(`${config}.primaryKey`)}>
                <input id="primary-key" className={inputClass} value={form.primaryKey} aria-describedby="primary-key-problems" onChange={(e) => set({ primaryKey: e.target.value })} />
              </Field>
              <Field id="surrogate-key" label="Surrogate key column (optional)" problems={at(`${config}.surrogateKey`)}>
                <input id="surrogate-key" className={inputClass} value={form.surrogateKey} aria-describedby="surrogate-key-problems" onChange={(e) => set({ surrogateKey: e.target.value })} />
              </Field>
              <Field id="silver-delta" label="Change column (optional)" problems={at(`${config}.deltaColumn`)}>
                <input id="silver-delta" className={inputClass} value={form.deltaColumn} aria-describedby="silver-delta-problems" onChange={(e) => set({ deltaColumn: e.target.value })} />
              </Field>
              <label className="flex items-center gap-2 text-sm">
                <input type="checkbox" checked={form.dedupe} onChange={(e) => set({ dedupe: e.target.checked })} />
                Remove duplicate rows
              </label>
              <FieldProblems id="dedupe-problems" messages={at(`${config}.dedupe`)} />
            </>
          ) : (
            <Field id="materialization" label="Materialization" problems={[...at(`${config}.materialization`), ...at(`${config}.aggregationEnabled`), ...at(`${config}.denormalizationEnabled`)]}>
              <select id="materialization" className={inputClass} value={form.materialization} aria-describedby="materialization-problems" onChange={(e) => set({ materialization: e.target.value as TransformForm["materialization"] })}>
                <option value="table">table</option>
                <option value="view">view</option>
              </select>
            </Field>
          )}
        </div>
      </fieldset>

      <fieldset className="mb-3 rounded border border-slate-300 p-3">
        <legend className="px-1 text-sm font-semibold">Derived columns</legend>
        {form.derived.map((row, index) => (
          <div key={index} className="mb-2 flex items-start gap-2">
            <div className="w-56">
              <Field id={`derived-${index}-name`} label={`Name of derived column ${index + 1}`} problems={at(`${T}.derivedColumns.${index}.name`)}>
                <input id={`derived-${index}-name`} className={`${inputClass} font-mono`} value={row.name} aria-describedby={`derived-${index}-name-problems`} onChange={(e) => updateRow("derived", index, { name: e.target.value })} />
              </Field>
            </div>
            <ExpressionInput
              id={`derived-${index}-expression`}
              label={`Expression of derived column ${index + 1} (SQL)`}
              value={row.expression}
              onChange={(expression) => updateRow("derived", index, { expression })}
              columns={knownColumns(inputTables, form.layer === "gold" ? form.joins.filter((j) => j.table.trim()).length : 0, assetColumns, form.derived, index)}
              saveProblems={at(`${T}.derivedColumns.${index}.expression`).concat(at(`${T}.derivedColumns.${index}`).filter((m) => !at(`${T}.derivedColumns.${index}.expression`).includes(m) && !at(`${T}.derivedColumns.${index}.name`).includes(m)))}
            />
            <button type="button" className={`${secondaryButtonClass} mt-5`} aria-label={`Remove derived column ${index + 1}`} onClick={() => removeRow("derived", index)}>Remove</button>
          </div>
        ))}
        <button type="button" className={secondaryButtonClass} onClick={() => set({ derived: [...form.derived, { name: "", expression: "" }] })}>Add a derived column</button>
      </fieldset>

      <fieldset className="mb-3 rounded border border-slate-300 p-3">
        <legend className="px-1 text-sm font-semibold">Filters (rows kept where true)</legend>
        {form.filters.map((text, index) => (
          <div key={index} className="mb-2 flex items-start gap-2">
            <ExpressionInput
              id={`filter-${index}`}
              label={`Filter ${index + 1} (SQL condition)`}
              value={text}
              onChange={(value) => set({ filters: form.filters.map((t, i) => (i === index ? value : t)) })}
              columns={knownColumns(inputTables, form.layer === "gold" ? form.joins.filter((j) => j.table.trim()).length : 0, assetColumns, form.derived, form.derived.length)}
              saveProblems={at(`${T}.filters.${index}`)}
            />
            <button type="button" className={`${secondaryButtonClass} mt-5`} aria-label={`Remove filter ${index + 1}`} onClick={() => removeRow("filters", index)}>Remove</button>
          </div>
        ))}
        <button type="button" className={secondaryButtonClass} onClick={() => set({ filters: [...form.filters, ""] })}>Add a filter</button>
      </fieldset>

      {form.layer === "gold" ? (
        <fieldset className="mb-3 rounded border border-slate-300 p-3">
          <legend className="px-1 text-sm font-semibold">Aggregations and joins</legend>
          {form.aggregations.map((row, index) => (
            <div key={index} className="mb-2 grid grid-cols-[1fr_10rem_1fr_auto] items-start gap-2">
              <Field id={`agg-${index}-column`} label={`Column ${index + 1} (or *)`} problems={at(`${T}.aggregations.${index}.column`)}>
                <input id={`agg-${index}-column`} className={`${inputClass} font-mono`} value={row.column} aria-describedby={`agg-${index}-column-problems`} onChange={(e) => updateRow("aggregations", index, { column: e.target.value })} />
              </Field>
              <Field id={`agg-${index}-function`} label={`Function ${index + 1}`} problems={at(`${T}.aggregations.${index}.function`)}>
                <select id={`agg-${index}-function`} className={inputClass} value={row.function} onChange={(e) => updateRow("aggregations", index, { function: e.target.value as AggregationRow["function"] })}>
                  {FUNCTIONS.map((f) => <option key={f}>{f}</option>)}
                </select>
              </Field>
              <Field id={`agg-${index}-alias`} label={`Result column ${index + 1}`} problems={at(`${T}.aggregations.${index}.alias`)}>
                <input id={`agg-${index}-alias`} className={`${inputClass} font-mono`} value={row.alias} aria-describedby={`agg-${index}-alias-problems`} onChange={(e) => updateRow("aggregations", index, { alias: e.target.value })} />
              </Field>
              <button type="button" className={`${secondaryButtonClass} mt-5`} aria-label={`Remove aggregation ${index + 1}`} onClick={() => removeRow("aggregations", index)}>Remove</button>
            </div>
          ))}
          <FieldProblems id="aggregations-problems" messages={grouped[`${T}.aggregations`] ?? []} />
          <button type="button" className={`${secondaryButtonClass} mb-3`} onClick={() => set({ aggregations: [...form.aggregations, { column: "", function: "SUM", alias: "" }] })}>Add an aggregation</button>
          <div className="mb-3 max-w-md">
            <Field id="group-by" label="Group by (columns, comma-separated)" problems={at(`${T}.groupBy`)}>
              <input id="group-by" className={`${inputClass} font-mono`} value={form.groupBy} aria-describedby="group-by-problems" onChange={(e) => set({ groupBy: e.target.value })} />
            </Field>
          </div>
          {form.joins.map((row, index) => (
            <div key={index} className="mb-2 grid grid-cols-[1fr_1fr_8rem_auto] items-start gap-2">
              <Field id={`join-${index}-table`} label={`Joined table ${index + 1}`} problems={at(`${T}.joins.${index}.table`)}>
                <input id={`join-${index}-table`} list="join-table-choices" className={`${inputClass} font-mono`} value={row.table} aria-describedby={`join-${index}-table-problems`} onChange={(e) => updateRow("joins", index, { table: e.target.value })} />
              </Field>
              <Field id={`join-${index}-on`} label={`On columns ${index + 1}`} problems={at(`${T}.joins.${index}.on`)}>
                <input id={`join-${index}-on`} className={`${inputClass} font-mono`} value={row.on} aria-describedby={`join-${index}-on-problems`} onChange={(e) => updateRow("joins", index, { on: e.target.value })} />
              </Field>
              <Field id={`join-${index}-type`} label={`Join type ${index + 1}`}>
                <select id={`join-${index}-type`} className={inputClass} value={row.type} onChange={(e) => updateRow("joins", index, { type: e.target.value as JoinRow["type"] })}>
                  {JOIN_TYPES.map((type) => <option key={type}>{type}</option>)}
                </select>
              </Field>
              <button type="button" className={`${secondaryButtonClass} mt-5`} aria-label={`Remove join ${index + 1}`} onClick={() => removeRow("joins", index)}>Remove</button>
            </div>
          ))}
          <datalist id="join-table-choices">{choices.map((table) => <option key={table} value={table} />)}</datalist>
          <FieldProblems id="joins-problems" messages={grouped[`${T}.joins`] ?? []} />
          <button type="button" className={secondaryButtonClass} onClick={() => set({ joins: [...form.joins, { table: "", on: "", type: "left" }] })}>Add a join</button>
        </fieldset>
      ) : null}

      {save.isError && !(save.error instanceof ApiError && save.error.problems.length) ? <ErrorBox error={save.error} /> : null}
      <OtherProblems messages={otherProblems(grouped, shownUnder, ["destinationConfig", config, `${T}.aggregations`, `${T}.joins`])} />
      <div className="flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={onDone}>Cancel</button>
        <button type="submit" className={buttonClass} disabled={save.isPending}>{save.isPending ? "Saving…" : job ? "Save changes" : "Create job"}</button>
      </div>
    </form>
  );
}
