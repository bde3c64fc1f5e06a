import type { ReactNode } from "react";
import { problemsAt, type BronzeSettings } from "../../jobForm";
import { inputClass } from "../../ui";

/** The API's messages for one field, in words, under it; `id` is what the field's
 * aria-describedby names. */
export function FieldProblems({ id, messages }: { id: string; messages: string[] }) {
  return (
    <div id={id} data-testid={id} aria-live="polite">
      {messages.map((message) => (
        <p key={message} className="text-sm text-red-800">{message}</p>
      ))}
    </div>
  );
}

/** A labelled field with the API's problems under it. */
export function Field({ id, label, problems, children, hint }: { id: string; label: string; problems?: string[]; children: ReactNode; hint?: ReactNode }) {
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium">{label}</label>
      {children}
      {hint ? <p className="text-xs text-slate-700">{hint}</p> : null}
      <FieldProblems id={`${id}-problems`} messages={problems ?? []} />
    </div>
  );
}

/** A job's name (focused first) and description, side by side, with the API's problems. */
export function NameFields({ name, description, onName, onDescription, problems }: { name: string; description: string; onName: (value: string) => void; onDescription: (value: string) => void; problems: (field: "name" | "description") => string[] }) {
  return (
    <div className="mb-3 grid grid-cols-2 gap-3">
      <Field id="job-name" label="Job name" problems={problems("name")}>
        <input id="job-name" autoFocus className={inputClass} value={name} aria-describedby="job-name-problems" onChange={(e) => onName(e.target.value)} />
      </Field>
      <Field id="job-description" label="Description" problems={problems("description")}>
        <input id="job-description" className={inputClass} value={description} aria-describedby="job-description-problems" onChange={(e) => onDescription(e.target.value)} />
      </Field>
    </div>
  );
}

/** Messages the API gave that no field of the form shows (nothing it says is lost). */
export function OtherProblems({ messages }: { messages: string[] }) {
  if (!messages.length) return null;
  return (
    <ul role="alert" className="my-3 list-disc rounded border border-red-300 bg-red-50 p-3 pl-6 text-sm text-red-900">
      {messages.map((message) => <li key={message}>{message}</li>)}
    </ul>
  );
}

/** The bronze table's settings: name, write mode, audit columns, shared append. */
/** Shows every problem under `destinationConfig` (the table field takes those the other
 * fields do not). */
export function BronzeFields({ value, onChange, grouped }: { value: BronzeSettings; onChange: (next: BronzeSettings) => void; grouped: Record<string, string[]> }) {
  const base = "destinationConfig.bronzeConfig";
  const problems = (path: string) => problemsAt(grouped, path);
  const elsewhere = new Set([...problems(`${base}.writeMode`), ...problems(`${base}.sharedAppend`)]);
  const tableProblems = problems("destinationConfig").filter((message) => !elsewhere.has(message));
  return (
    <fieldset className="mb-3 rounded border border-slate-300 p-3">
      <legend className="px-1 text-sm font-semibold">Bronze settings</legend>
      <div className="grid grid-cols-2 gap-3">
        <Field id="bronze-table" label="Bronze table" problems={tableProblems}>
          <input id="bronze-table" className={inputClass} value={value.tableName} aria-describedby="bronze-table-problems" onChange={(e) => onChange({ ...value, tableName: e.target.value })} />
        </Field>
        <Field id="bronze-write-mode" label="Write mode" problems={problems(`${base}.writeMode`)}>
          <select id="bronze-write-mode" className={inputClass} value={value.writeMode} aria-describedby="bronze-write-mode-problems" onChange={(e) => onChange({ ...value, writeMode: e.target.value as BronzeSettings["writeMode"] })}>
            <option value="append">append (keep every load)</option>
            <option value="overwrite">overwrite (only the last load)</option>
          </select>
        </Field>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={value.auditColumns} onChange={(e) => onChange({ ...value, auditColumns: e.target.checked })} />
          Audit columns (load time, run id)
        </label>
        <div>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={value.sharedAppend} aria-describedby="bronze-shared-problems" onChange={(e) => onChange({ ...value, sharedAppend: e.target.checked })} />
            Shared: other jobs append to this table too
          </label>
          <FieldProblems id="bronze-shared-problems" messages={problems(`${base}.sharedAppend`)} />
        </div>
      </div>
    </fieldset>
  );
}
