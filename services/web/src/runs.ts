/** Pure helpers about runs, kept apart from the pages so they are unit-tested. */

export const ENDED = new Set(["succeeded", "failed", "cancelled"]);

export function isEnded(status: string | undefined): boolean {
  return status !== undefined && ENDED.has(status);
}

export interface JobRunLike {
  status: string;
}

/** "3 of 10 jobs done" for a progress bar: a job counts as done once it ended, whatever the outcome. */
export function progress(jobs: JobRunLike[]): { done: number; total: number; percent: number } {
  const total = jobs.length;
  const done = jobs.filter((job) => ENDED.has(job.status) || job.status === "skipped").length;
  return { done, total, percent: total ? Math.round((done / total) * 100) : 0 };
}

/** Parse a text/event-stream chunk sequence into events; returns the events and what is left over. */
export function parseSse(buffer: string): { events: { id?: string; event: string; data: string }[]; rest: string } {
  const events: { id?: string; event: string; data: string }[] = [];
  const normalized = buffer.replace(/\r\n/g, "\n");
  const blocks = normalized.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length || event !== "message") events.push({ id, event, data: data.join("\n") });
  }
  return { events, rest };
}
