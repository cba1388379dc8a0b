import { describe, expect, it } from "vitest";
import { followRun, SseParser, type StreamState } from "./sse";
import type { RunEvent } from "./types";

describe("SSE parser", () => {
  it("parses events split across chunks, with ids, comments and retry", () => {
    const p = new SseParser();
    expect(p.push("retry: 2000\n\n: keep-alive\n\nid: 1\nevent: run.started\nda")).toEqual([]);
    const out = p.push('ta: {"seq": 1}\n\nid: 2\ndata: a\ndata: b\r\n\r\n');
    expect(out).toEqual([
      { id: "1", event: "run.started", data: '{"seq": 1}' },
      { id: "2", event: "message", data: "a\nb" },
    ]);
    expect(p.retry).toBe(2000);
    expect(p.lastEventId).toBe("2");
  });

  it("waits for the rest of a CRLF split between chunks", () => {
    const p = new SseParser();
    expect(p.push("data: x\r")).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ id: null, event: "message", data: "x" }]);
  });
});

const event = (seq: number, type: string): RunEvent => ({ seq, type, step_id: null, data: {}, created_at: "" });

function sseResponse(events: RunEvent[], close: "end" | "error"): Response {
  const text = events.map((e) => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode(text));
      } else if (close === "end") controller.close();
      else controller.error(new TypeError("network error"));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

describe("following a run", () => {
  it("reconnects after a drop from the last seq and stops at the end", async () => {
    const urls: string[] = [];
    const lastIds: (string | null)[] = [];
    const answers = [
      () => sseResponse([event(1, "run.started"), event(2, "step.started")], "error"),
      () => Promise.reject(new TypeError("offline")),
      () => sseResponse([event(2, "step.started"), event(3, "step.succeeded"), event(4, "run.succeeded")], "end"),
    ];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      urls.push(url);
      lastIds.push(new Headers(init.headers).get("Last-Event-ID"));
      return answers.shift()!();
    }) as unknown as typeof fetch;
    const seen: number[] = [];
    const states: StreamState[] = [];
    await new Promise<void>((resolve) => {
      followRun({
        runId: "r1",
        after: 0,
        headers: () => ({ Authorization: "Bearer t" }),
        onEvents: (events) => seen.push(...events.map((e) => e.seq)),
        onState: (s) => {
          states.push(s);
          if (s === "finished") resolve();
        },
        onUnauthorized: () => {},
        fetchImpl,
        backoff: () => 1,
      });
    });
    expect(seen).toEqual([1, 2, 3, 4]); // the repeated seq 2 is not delivered twice
    expect(urls).toEqual(["/v1/runs/r1/events?after=0", "/v1/runs/r1/events?after=2", "/v1/runs/r1/events?after=2"]);
    expect(lastIds).toEqual([null, "2", "2"]);
    expect(states).toContain("reconnecting");
    expect(urls.every((u) => !u.includes("token"))).toBe(true);
  });

  it("reads past an earlier final event of a retried run", async () => {
    const answers = [
      () => sseResponse([event(1, "run.failed"), event(2, "run.retried"), event(3, "step.started")], "end"),
      () => sseResponse([event(4, "run.succeeded")], "end"),
    ];
    const fetchImpl = (async () => answers.shift()!()) as unknown as typeof fetch;
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      followRun({
        runId: "r4",
        after: 0,
        headers: () => ({}),
        onEvents: (events) => seen.push(...events.map((e) => e.seq)),
        onState: (s) => s === "finished" && resolve(),
        onUnauthorized: () => {},
        fetchImpl,
        backoff: () => 1,
      });
    });
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it("falls back to long-polling when the server answers JSON", async () => {
    const urls: string[] = [];
    const pages = [
      { events: [event(1, "run.started")], next_after: 1, finished: false },
      { events: [event(2, "run.succeeded")], next_after: 2, finished: true },
    ];
    const fetchImpl = (async (url: string) => {
      urls.push(url);
      return new Response(JSON.stringify(pages.shift()), { headers: { "content-type": "application/json" } });
    }) as unknown as typeof fetch;
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      followRun({
        runId: "r2",
        after: 0,
        headers: () => ({}),
        onEvents: (events) => seen.push(...events.map((e) => e.seq)),
        onState: (s) => s === "finished" && resolve(),
        onUnauthorized: () => {},
        fetchImpl,
      });
    });
    expect(seen).toEqual([1, 2]);
    expect(urls).toEqual(["/v1/runs/r2/events?after=0", "/v1/runs/r2/events?after=1&wait=20"]);
  });

  it("signs out on a 401", async () => {
    const fetchImpl = (async () => new Response("{}", { status: 401 })) as unknown as typeof fetch;
    await new Promise<void>((resolve) => {
      followRun({ runId: "r3", after: 0, headers: () => ({}), onEvents: () => {}, onState: () => {}, onUnauthorized: resolve, fetchImpl });
    });
  });
});
