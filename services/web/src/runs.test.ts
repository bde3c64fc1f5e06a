import { describe, expect, it } from "vitest";
import { parseSse, progress } from "./runs";

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
