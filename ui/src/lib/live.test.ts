import { describe, expect, it } from "vitest";
import { explainRefusal, followLive, isRefusal, type ChannelStatus, type EventsPage, type OpenChannel } from "./live";
import type { StreamState } from "./sse";
import type { RunEvent } from "./types";

const event = (seq: number, type = "step.succeeded"): RunEvent => ({ seq, type, step_id: type.startsWith("step.") ? `s${seq}` : null, data: {}, created_at: "" });
const tick = () => new Promise((r) => setTimeout(r, 0));

/** A channel the test drives, and an events log the API serves. */
function harness(log: RunEvent[], finished = () => false) {
  const calls: string[] = [];
  let handlers: Parameters<OpenChannel>[0] | null = null;
  let left = false;
  const open: OpenChannel = (h) => {
    calls.push("subscribe");
    handlers = h;
    return () => {
      left = true;
    };
  };
  const fetchPage = async (after: number): Promise<EventsPage> => {
    calls.push(`fetch after=${after}`);
    return { events: log.filter((e) => e.seq > after), finished: finished() };
  };
  const got: number[] = [];
  const states: StreamState[] = [];
  const refused: string[] = [];
  const follow = followLive({
    runId: "r1",
    after: 0,
    open,
    fetchPage,
    onEvents: (events) => got.push(...events.map((e) => e.seq)),
    onState: (s) => states.push(s),
    onRefused: (m) => refused.push(m),
    reconcileMs: 60_000,
  });
  return {
    calls,
    got,
    states,
    refused,
    follow,
    left: () => left,
    push: (e: RunEvent) => handlers!.onEvent(e),
    status: (s: ChannelStatus, message?: string) => handlers!.onStatus(s, message),
  };
}

describe("following a run through Realtime", () => {
  it("subscribes first, then reads what came before, each event once and in order", async () => {
    const log = [event(1, "run.started"), event(2), event(3)];
    const h = harness(log);
    expect(h.calls).toEqual(["subscribe"]); // nothing fetched before the subscription
    h.status("SUBSCRIBED");
    h.push(event(2)); // pushed while the catch-up is in flight
    await tick();
    expect(h.calls.slice(0, 2)).toEqual(["subscribe", "fetch after=0"]);
    log.push(event(4));
    h.push(event(4));
    h.push(event(3)); // a late duplicate
    await tick();
    expect(h.got).toEqual([1, 2, 3, 4]);
    expect(h.states).toEqual(["connecting", "live"]);
  });

  it("fills a gap in seq from the API", async () => {
    const log = [event(1), event(2), event(3)];
    const h = harness(log);
    h.status("SUBSCRIBED");
    await tick();
    log.push(event(4), event(5));
    h.push(event(5)); // 4 never came as a push
    await tick();
    expect(h.got).toEqual([1, 2, 3, 4, 5]);
    expect(h.calls.at(-1)).toBe("fetch after=3");
  });

  it("after a dropped socket rejoins, catches up from the last seq", async () => {
    const log = [event(1), event(2)];
    const h = harness(log);
    h.status("SUBSCRIBED");
    await tick();
    h.status("CHANNEL_ERROR", "socket closed: 1006");
    expect(h.states.at(-1)).toBe("reconnecting");
    expect(h.refused).toEqual([]); // a lost socket is not a refusal
    log.push(event(3), event(4)); // written while it was down
    h.status("SUBSCRIBED");
    await tick();
    expect(h.got).toEqual([1, 2, 3, 4]);
    expect(h.calls.at(-1)).toBe("fetch after=2");
  });

  it("ends when a run event says the run finished, and leaves the channel", async () => {
    let done = false;
    const log = [event(1), event(2)];
    const h = harness(log, () => done);
    h.status("SUBSCRIBED");
    await tick();
    log.push(event(3, "run.succeeded"));
    done = true;
    h.push(event(3, "run.succeeded"));
    await tick();
    await tick();
    expect(h.got).toEqual([1, 2, 3]);
    expect(h.states.at(-1)).toBe("finished");
    expect(h.left()).toBe(true);
  });

  it("a refused join stops, leaves the channel and says why", async () => {
    const h = harness([event(1)]);
    h.status("CHANNEL_ERROR", "Unauthorized: You do not have permissions to read from this Channel topic: run:r1");
    await tick();
    expect(h.refused).toHaveLength(1);
    expect(h.left()).toBe(true);
    expect(h.calls).toEqual(["subscribe"]); // no events were read for it
    expect(explainRefusal(h.refused[0], "r1")).toMatch(/^Realtime refused to show run r1: it is not yours/);
  });

  it("tells a refusal from a lost connection", () => {
    expect(isRefusal("InvalidJWTToken: Token has expired")).toBe(true);
    expect(isRefusal("socket closed: 1006")).toBe(false);
    expect(isRefusal("channel error: connection lost")).toBe(false);
    expect(isRefusal(undefined)).toBe(false);
    expect(explainRefusal("InvalidJWTToken: Token has expired", "r1")).toMatch(/sign in again/);
  });
});
