import { useState, type DragEvent, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { ApiError, api, unwrap, type Schemas } from "../api/client";
import { bronzeTableFor, columnOverrides, COLUMN_TYPES, initialEdits, type ColumnEdit, type ColumnType, type DetectedColumn } from "../jobs";
import { bronzeFromJob, csvJobBody, destinationForBronze, groupProblems, otherProblems, problemsAt, type BronzeSettings, type CsvColumn, type JobRead } from "../jobForm";
import { buttonClass, ErrorBox, inputClass, secondaryButtonClass } from "../ui";
import { BronzeFields, Field, NameFields, OtherProblems } from "./jobform/Fields";
import { useSaveJob } from "./jobform/useSaveJob";

interface Detection {
  columns: DetectedColumn[];
  warnings?: unknown[];
}
type Preview = Schemas["FilePreview"];

function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && "msg" in value) return String((value as { msg: unknown }).msg);
  return JSON.stringify(value);
}

/** Create a CSV job: upload (or drop) the file, see the detected schema with preview rows and
 * warnings, change types, formats and names, name the bronze table. */
export function CsvJobForm({ workflowId, onDone, job }: { workflowId: string; onDone: () => void; job?: JobRead }) {
  if (job) return <CsvJobEdit workflowId={workflowId} job={job} onDone={onDone} />;
  return <CsvJobCreate workflowId={workflowId} onDone={onDone} />;
}

function CsvJobCreate({ workflowId, onDone }: { workflowId: string; onDone: () => void }) {
  const [name, setName] = useState("");
  const [bronze, setBronze] = useState<BronzeSettings>(bronzeFromJob(null));
  const table = bronze.tableName;
  const [fileId, setFileId] = useState<string | null>(null);
  const [detection, setDetection] = useState<Detection | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [edits, setEdits] = useState<Record<string, ColumnEdit>>({});
  const [dragging, setDragging] = useState(false);

  const upload = useMutation({
    mutationFn: async (file: File) => {
      const form = new FormData();
      form.append("file", file);
      const uploaded = await unwrap(api.POST("/api/files", { body: form as never, bodySerializer: (body: unknown) => body as FormData }));
      const path = { params: { path: { file_id: uploaded.id } } };
      const [schema, rows] = await Promise.all([
        unwrap(api.GET("/api/files/{file_id}/schema", path)),
        unwrap(api.GET("/api/files/{file_id}/preview", { params: { path: { file_id: uploaded.id }, query: { rows: 10 } } })),
      ]);
      return { file, id: uploaded.id, schema: schema as unknown as Detection, preview: rows };
    },
    onSuccess: ({ file, id, schema, preview: rows }) => {
      setFileId(id);
      setDetection(schema);
      setPreview(rows);
      setEdits(initialEdits(schema.columns));
      if (!table) setBronze((current) => ({ ...current, tableName: bronzeTableFor(file.name) }));
      if (!name) setName(`Ingest ${file.name}`);
    },
  });

  const create = useSaveJob(
    workflowId,
    null,
    () => ({
      name,
      type: "file-based",
      sourceConfig: { type: "csv", fileConfig: { fileId, columns: columnOverrides(detection?.columns ?? [], edits) } },
      destinationConfig: destinationForBronze(bronze),
    }),
    onDone,
  );
  const grouped = groupProblems(create.error);

  function drop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    const file = event.dataTransfer.files?.[0];
    if (file) upload.mutate(file);
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }

  function edit(column: string, change: Partial<ColumnEdit>) {
    setEdits((current) => ({ ...current, [column]: { ...current[column], ...change } }));
  }

  const warnings = [...(detection?.warnings ?? []), ...(preview?.warnings ?? [])].map(text);

  return (
    <form onSubmit={submit} aria-label="New CSV job" className="mb-6 rounded-lg border border-indigo-300 bg-white p-5">
      <h2 className="mb-3 text-lg font-semibold">New CSV job</h2>
      <div
        onDragOver={(event) => { event.preventDefault(); setDragging(true); }}
        onDragLeave={() => setDragging(false)}
        onDrop={drop}
        className={`mb-3 rounded border-2 border-dashed p-4 text-sm ${dragging ? "border-indigo-600 bg-indigo-50" : "border-slate-400"}`}
      >
        <label htmlFor="csv-file" className="block font-medium">CSV file (choose or drop it here)</label>
        <input id="csv-file" type="file" accept=".csv,text/csv" onChange={(event) => event.target.files?.[0] && upload.mutate(event.target.files[0])} />
        {upload.isPending ? <p role="status">Uploading and detecting the schema…</p> : null}
      </div>
      <ErrorBox error={upload.error} />
      <div className="mb-3 grid grid-cols-2 gap-3">
        <Field id="job-name" label="Job name" problems={problemsAt(grouped, "name")}>
          <input id="job-name" className={inputClass} value={name} aria-describedby="job-name-problems" onChange={(e) => setName(e.target.value)} />
        </Field>
      </div>
      <BronzeFields value={bronze} onChange={setBronze} grouped={grouped} />
      {warnings.length ? (
        <ul className="mb-3 list-disc rounded border border-amber-300 bg-amber-50 p-3 pl-6 text-sm text-amber-950" aria-label="Detection warnings">
          {warnings.map((warning) => <li key={warning}>{warning}</li>)}
        </ul>
      ) : null}
      {detection ? (
        <div className="mb-3 overflow-auto">
          <table className="w-full border-collapse text-sm" aria-label="Detected schema">
            <thead>
              <tr className="border-b border-slate-300 text-left">
                <th className="p-1">Column</th>
                <th className="p-1">Type</th>
                <th className="p-1">Format</th>
                <th className="p-1">New name</th>
                <th className="p-1">Nullable</th>
                <th className="p-1">Examples</th>
              </tr>
            </thead>
            <tbody>
              {detection.columns.map((column) => (
                <tr key={column.name} className="border-b border-slate-200">
                  <td className="p-1 font-mono">{column.name}{column.pii ? <span className="ml-1 rounded bg-red-100 px-1 text-xs text-red-900">PII</span> : null}</td>
                  <td className="p-1">
                    <select aria-label={`Type of ${column.name}`} className={inputClass} value={edits[column.name]?.type ?? column.type} onChange={(e) => edit(column.name, { type: e.target.value as ColumnType })}>
                      {COLUMN_TYPES.map((type) => <option key={type}>{type}</option>)}
                    </select>
                  </td>
                  <td className="p-1"><input aria-label={`Format of ${column.name}`} className={inputClass} value={edits[column.name]?.format ?? ""} onChange={(e) => edit(column.name, { format: e.target.value })} /></td>
                  <td className="p-1"><input aria-label={`New name of ${column.name}`} className={inputClass} value={edits[column.name]?.rename ?? ""} onChange={(e) => edit(column.name, { rename: e.target.value })} /></td>
                  <td className="p-1">{column.nullable === false ? "no" : "yes"}</td>
                  <td className="p-1 text-xs">{(column.examples ?? []).slice(0, 3).join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {preview && preview.rows.length ? (
        <div className="mb-3 max-h-64 overflow-auto rounded border border-slate-300" tabIndex={0} role="region" aria-label="Preview rows">
          <table className="border-collapse text-xs">
            <thead className="bg-slate-100">
              <tr>{preview.columns.map((c) => <th key={c} className="p-1 text-left font-mono">{c}</th>)}</tr>
            </thead>
            <tbody>
              {preview.rows.map((row, i) => (
                <tr key={i} className="border-t border-slate-200">{preview.columns.map((c) => <td key={c} className="whitespace-nowrap p-1">{row[c] ?? "∅"}</td>)}</tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {create.isError && !(create.error instanceof ApiError && create.error.problems.length) ? <ErrorBox error={create.error} /> : null}
      <OtherProblems messages={otherProblems(grouped, ["name", "destinationConfig"])} />
      <div className="flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={onDone}>Cancel</button>
        <button type="submit" className={buttonClass} disabled={!fileId || create.isPending}>{create.isPending ? "Creating…" : "Create job"}</button>
      </div>
    </form>
  );
}

/** Edit a CSV job: its name, description, bronze settings and the columns' types, formats
 * and names (the file stays the one it reads; a new file is a new job). Saved with the
 * version read: a change made meanwhile is a 409, shown, not overwritten. */
function CsvJobEdit({ workflowId, job, onDone }: { workflowId: string; job: JobRead; onDone: () => void }) {
  const fileConfig = (job.sourceConfig as { fileConfig?: { columns?: CsvColumn[]; fileName?: string; filePath?: string; fileId?: string } }).fileConfig ?? {};
  const [name, setName] = useState(job.name);
  const [description, setDescription] = useState(job.description ?? "");
  const [bronze, setBronze] = useState<BronzeSettings>(bronzeFromJob(job));
  const [columns, setColumns] = useState<CsvColumn[]>((fileConfig.columns ?? []).map((column) => ({ ...column })));
  const save = useSaveJob(workflowId, job, () => csvJobBody(job, name, description, bronze, columns), onDone);
  const grouped = groupProblems(save.error);
  const columnProblems = (index: number) => problemsAt(grouped, `sourceConfig.fileConfig.columns.${index}`);

  function edit(index: number, change: Partial<CsvColumn>) {
    setColumns((current) => current.map((column, i) => (i === index ? { ...column, ...change } : column)));
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }

  return (
    <form onSubmit={submit} aria-label={`Edit job ${job.name}`} className="mb-6 rounded-lg border border-indigo-300 bg-white p-5">
      <h2 className="mb-3 text-lg font-semibold">Edit CSV job “{job.name}”</h2>
      <p className="mb-3 text-sm">Reads <span className="font-mono">{fileConfig.fileName ?? fileConfig.filePath ?? fileConfig.fileId}</span>.</p>
      <NameFields name={name} description={description} onName={setName} onDescription={setDescription} problems={(field) => problemsAt(grouped, field)} />
      <BronzeFields value={bronze} onChange={setBronze} grouped={grouped} />
      {columns.length ? (
        <div className="mb-3 overflow-auto">
          <table className="w-full border-collapse text-sm" aria-label="Columns">
            <thead>
              <tr className="border-b border-slate-300 text-left">
                <th className="p-1">Column</th>
                <th className="p-1">Type</th>
                <th className="p-1">Format</th>
                <th className="p-1">New name</th>
              </tr>
            </thead>
            <tbody>
              {columns.map((column, index) => (
                <tr key={column.name} className="border-b border-slate-200 align-top">
                  <td className="p-1 font-mono">{column.name}</td>
                  <td className="p-1">
                    <select aria-label={`Type of ${column.name}`} className={inputClass} value={column.type ?? "string"} onChange={(e) => edit(index, { type: e.target.value })}>
                      {COLUMN_TYPES.map((type) => <option key={type}>{type}</option>)}
                    </select>
                  </td>
                  <td className="p-1"><input aria-label={`Format of ${column.name}`} className={inputClass} value={column.format ?? ""} onChange={(e) => edit(index, { format: e.target.value })} /></td>
                  <td className="p-1">
                    <input aria-label={`New name of ${column.name}`} className={inputClass} value={column.rename ?? ""} aria-describedby={`column-${index}-problems`} onChange={(e) => edit(index, { rename: e.target.value })} />
                    <div id={`column-${index}-problems`}>{columnProblems(index).map((m) => <p key={m} className="text-sm text-red-800">{m}</p>)}</div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {save.isError && !(save.error instanceof ApiError && save.error.problems.length) ? <ErrorBox error={save.error} /> : null}
      <OtherProblems messages={otherProblems(grouped, ["name", "description", "destinationConfig", "sourceConfig.fileConfig.columns"])} />
      <div className="flex gap-2">
        <button type="button" className={secondaryButtonClass} onClick={onDone}>Cancel</button>
        <button type="submit" className={buttonClass} disabled={save.isPending}>{save.isPending ? "Saving…" : "Save changes"}</button>
      </div>
    </form>
  );
}
