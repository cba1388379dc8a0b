// Server-sent events read with fetch (EventSource cannot send Authorization), resumed from
// the last seq after a drop, with the JSON long-poll answer where the server buffers
// responses (Lambda). Never a token in a URL.
import type { RunEvent } from "./types";

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/** An incremental parser of the text/event-stream format (WHATWG HTML, 9.2.6). */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  /** The last event id seen, kept across messages as the spec says. */
  lastEventId: string | null = null;
  retry: number | null = null;

  /** Feed a chunk of text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end might be the first half of \r\n: wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const message = { id: this.lastEventId, event: this.event || "message", data: this.data.join("\n") };
      this.data = [];
      this.event = "";
      return message;
    }
    if (line.startsWith(":")) return null; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
    } else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

export type StreamState = "connecting" | "live" | "reconnecting" | "polling" | "finished";

export interface FollowOptions {
  runId: string;
  after: number;
  /** The request's auth headers, asked before each request (tokens are refreshed). */
  headers: () => Record<string, string> | Promise<Record<string, string>>;
  onEvents: (events: RunEvent[]) => void;
  onState: (state: StreamState, detail?: string) => void;
  /** Called on a 401: the caller signs out. */
  onUnauthorized: () => void;
  fetchImpl?: typeof fetch;
  /** Milliseconds before a reconnect; grows on repeated failures. */
  backoff?: (failures: number) => number;
}

const FINAL = new Set(["run.succeeded", "run.failed", "run.cancelled"]);

/** Follow a run's events until it finishes or `stop()` is called. */
export function followRun(options: FollowOptions): { stop: () => void } {
  const doFetch = options.fetchImpl ?? fetch.bind(globalThis);
  const backoff = options.backoff ?? ((n: number) => Math.min(10000, 500 * 2 ** Math.min(n, 5)));
  let after = options.after;
  let stopped = false;
  let controller: AbortController | null = null;
  let failures = 0;
  let useLongPoll = false;

  // The run is over when the server ends the stream right after a final event. A final
  // event followed by more (a retried run's history) is not the end.
  let lastFinal = false;
  const deliver = (events: RunEvent[]) => {
    const fresh = events.filter((e) => e.seq > after);
    if (fresh.length === 0) return;
    after = fresh[fresh.length - 1].seq;
    lastFinal = FINAL.has(fresh[fresh.length - 1].type);
    options.onEvents(fresh);
  };

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function stream(): Promise<"finished" | "ended"> {
    controller = new AbortController();
    const response = await doFetch(`/v1/runs/${options.runId}/events?after=${after}`, {
      headers: { ...(await options.headers()), Accept: "text/event-stream", ...(after ? { "Last-Event-ID": String(after) } : {}) },
      signal: controller.signal,
    });
    if (response.status === 401) {
      options.onUnauthorized();
      throw new Stop();
    }
    if (!response.ok) throw new Error(`events answered ${response.status}`);
    const type = response.headers.get("content-type") ?? "";
    if (!type.includes("text/event-stream") || !response.body) {
      // A buffered server answers JSON: switch to long-polling.
      useLongPoll = true;
      const page = await response.json();
      deliver(page.events ?? []);
      return page.finished ? "finished" : "ended";
    }
    options.onState("live");
    failures = 0;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return lastFinal ? "finished" : "ended";
      const events: RunEvent[] = [];
      for (const message of parser.push(decoder.decode(value, { stream: true }))) {
        try {
          events.push(JSON.parse(message.data) as RunEvent);
        } catch {
          /* not an event: ignore */
        }
      }
      deliver(events);
    }
  }

  async function poll(): Promise<"finished" | "ended"> {
    controller = new AbortController();
    const response = await doFetch(`/v1/runs/${options.runId}/events?after=${after}&wait=20`, {
      headers: { ...(await options.headers()), Accept: "application/json" },
      signal: controller.signal,
    });
    if (response.status === 401) {
      options.onUnauthorized();
      throw new Stop();
    }
    if (!response.ok) throw new Error(`events answered ${response.status}`);
    options.onState("polling");
    failures = 0;
    const page = await response.json();
    deliver(page.events ?? []);
    return page.finished ? "finished" : "ended";
  }

  (async () => {
    options.onState("connecting");
    while (!stopped) {
      try {
        const result = useLongPoll ? await poll() : await stream();
        if (result === "finished") {
          options.onState("finished");
          return;
        }
      } catch (error) {
        if (stopped || error instanceof Stop) return;
        failures += 1;
        options.onState("reconnecting", error instanceof Error ? error.message : String(error));
        await sleep(backoff(failures));
      }
    }
  })();

  return {
    stop: () => {
      stopped = true;
      controller?.abort();
    },
  };
}

class Stop extends Error {}
