import { useState } from "react";
import { type Schemas } from "../../api/client";
import { useSaveJob } from "../../components/jobform/useSaveJob";
import type { JobRead } from "../../jobForm";
import { buttonClass, ErrorBox, secondaryButtonClass } from "../../ui";

type Job = Schemas["JobPublic"];

/** The names of the jobs `job` names in its dependsOn, in the order of `jobs`. */
export function runsAfter(job: Job, jobs: Job[]): string[] {
  const named = new Set(job.dependsOn ?? []);
  return jobs.filter((other) => named.has(other.id)).map((other) => other.name);
}

/** The jobs this one waits for (its `dependsOn`), by name, and for an editor a way to change
 * them (`useSaveJob`): only `dependsOn` is sent, with the version the list read (a change made meanwhile is
 * a 409); one that would close a cycle is refused by the API (422), in its words. A job also
 * waits for the jobs that write the tables it reads without being ticked here. */
export function JobOrder({ workflowId, job, jobs, editor, disabled }: { workflowId: string; job: Job; jobs: Job[]; editor: boolean; disabled: boolean }) {
  const [chosen, setChosen] = useState<string[] | null>(null);
  // The job as the list read it, with the new order: only what changed is sent, with its version.
  const read = job as unknown as JobRead;
  const save = useSaveJob(workflowId, read, () => ({ ...read, dependsOn: chosen ?? [] }), () => setChosen(null));
  const names = <span data-testid="runs-after">{runsAfter(job, jobs).join(", ") || "—"}</span>;
  if (chosen === null) {
    return (
      <div className="flex flex-wrap items-center gap-2">
        {names}
        {editor ? (
          <button type="button" className="text-indigo-800 underline disabled:text-slate-500" disabled={disabled} aria-label={`Choose what ${job.name} runs after`} onClick={() => setChosen(job.dependsOn ?? [])}>
            change
          </button>
        ) : null}
      </div>
    );
  }
  const others = jobs.filter((other) => other.id !== job.id);
  const toggle = (id: string, on: boolean) => setChosen(on ? [...chosen, id] : chosen.filter((other) => other !== id));
  return (
    <fieldset className="min-w-48 rounded border border-slate-300 p-2">
      <legend className="px-1 text-sm font-semibold">{job.name} runs after</legend>
      {others.length ? null : <p className="text-sm">No other job in this workflow.</p>}
      {others.map((other) => (
        <label key={other.id} className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={chosen.includes(other.id)} onChange={(e) => toggle(other.id, e.target.checked)} />
          {other.name}
        </label>
      ))}
      <p className="text-xs text-slate-700">It also waits for the jobs that write the tables it reads.</p>
      <div className="mt-2 flex flex-wrap gap-2">
        <button type="button" className={buttonClass} disabled={save.isPending} onClick={() => save.mutate()}>Save order</button>
        <button type="button" className={secondaryButtonClass} onClick={() => { setChosen(null); save.reset(); }}>Cancel</button>
      </div>
      <ErrorBox error={save.error} />
    </fieldset>
  );
}
