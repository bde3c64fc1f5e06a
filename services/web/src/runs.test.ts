import { describe, expect, it } from "vitest";
import { lastRunByWorkflow, parseSse, progress } from "./runs";

describe("lastRunByWorkflow", () => {
  it("keeps the newest run of each workflow whatever the order", () => {
    const runs = [
      { id: "a", workflowId: "w1", status: "failed", createdAt: "2026-01-01T10:00:00Z" },
      { id: "b", workflowId: "w1", status: "succeeded", createdAt: "2026-01-02T10:00:00Z" },
      { id: "c", workflowId: "w2", status: "running", createdAt: "2026-01-01T09:00:00Z" },
    ];
    const last = lastRunByWorkflow([runs[1], runs[0], runs[2]]);
    expect(last.get("w1")?.id).toBe("b");
    expect(last.get("w2")?.id).toBe("c");
    expect(lastRunByWorkflow(runs.slice(0, 2)).get("w1")?.id).toBe("b");
  });
});

describe("progress", () => {
  it("counts ended jobs, failed ones included", () => {
    expect(progress([{ status: "succeeded" }, { status: "failed" }, { status: "running" }, { status: "queued" }])).toEqual({
      done: 2,
      total: 4,
      percent: 50,
    });
    expect(progress([])).toEqual({ done: 0, total: 0, percent: 0 });
  });
});

describe("parseSse", () => {
  it("parses complete events and keeps a partial one for the next chunk", () => {
    const first = parseSse('id: 1\nevent: job.started\ndata: {"a":1}\n\nid: 2\nevent: batch.wr');
    expect(first.events).toEqual([{ id: "1", event: "job.started", data: '{"a":1}' }]);
    const second = parseSse(first.rest + 'itten\ndata: {"rowsRead":5}\n\n: keep-alive\n\n');
    expect(second.events).toEqual([{ id: "2", event: "batch.written", data: '{"rowsRead":5}' }]);
    expect(second.rest).toBe("");
  });

  it("joins multi-line data and accepts CRLF", () => {
    const { events } = parseSse("data: a\r\ndata: b\r\n\r\n");
    expect(events).toEqual([{ id: undefined, event: "message", data: "a\nb" }]);
  });
});
