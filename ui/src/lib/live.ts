// Follow a run through Supabase Realtime: the database broadcasts every run event on the
// private topic `run:<run_id>` (the realtime_broadcast migration). Subscribe first, then
// read the events after the last seen seq from the API, so nothing falls between the two;
// every (re)subscription, every gap in seq and every quiet spell catches up the same way,
// and events are de-duplicated by seq. run_events stays the source of truth: a push is
// only a faster way to learn of a row. The channel itself (supabase-js) lives in
// ./supabase; this module is the protocol, testable without a socket.
import type { StreamState } from "./sse";
import type { RunEvent } from "./types";

/** What supabase-js reports about a channel (`subscribe((status, err) => ...)`). */
export type ChannelStatus = "SUBSCRIBED" | "CHANNEL_ERROR" | "TIMED_OUT" | "CLOSED";

/** Open the run's channel; returns a function that leaves it. */
export type OpenChannel = (handlers: { onEvent: (event: RunEvent) => void; onStatus: (status: ChannelStatus, message?: string) => void }) => () => void;

export interface EventsPage {
  events: RunEvent[];
  finished: boolean;
}

export interface LiveOptions {
  runId: string;
  after: number;
  open: OpenChannel;
  /** GET /v1/runs/{id}/events?after=SEQ (no waiting: pushes say when to ask). */
  fetchPage: (after: number) => Promise<EventsPage>;
  onEvents: (events: RunEvent[]) => void;
  onState: (state: StreamState, detail?: string) => void;
  /** The join was refused or Realtime cannot be had: the caller falls back to the events stream. */
  onRefused: (message: string, after: number) => void;
  /** Milliseconds without a push after which the API is asked anyway. */
  reconcileMs?: number;
}

/** True for a refusal by the server (a reason it gave), false for a lost connection,
 * which supabase-js recovers by itself (it reconnects and joins again). */
export function isRefusal(message: string | undefined): boolean {
  if (!message) return false;
  return !/^(socket closed|channel error: (transport failure|connection lost))/.test(message);
}

export function explainRefusal(message: string, runId: string): string {
  if (message.startsWith("Realtime ")) return `${message}: following the events stream instead.`;
  if (/expired/i.test(message)) return `Realtime refused the access token (${message}): sign in again. Following the events stream instead.`;
  if (message.startsWith("Unauthorized"))
    return `Realtime refused to show run ${runId}: it is not yours, or it does not exist (${message}).`;
  return `Realtime refused the subscription to run ${runId} (${message}). Following the events stream instead.`;
}

/** Follow until the run has finished, the join is refused, or `stop()`. */
export function followLive(options: LiveOptions): { stop: () => void } {
  const reconcileMs = options.reconcileMs ?? 15000;
  let last = options.after;
  let stopped = false;
  let subscribedOnce = false;
  let dropped = false;
  let leave: (() => void) | null = null;
  let quiet: ReturnType<typeof setTimeout> | null = null;
  const catching = { busy: false, again: false };

  const end = () => {
    stopped = true;
    if (quiet) clearTimeout(quiet);
    const l = leave;
    leave = null;
    l?.();
  };

  const deliver = (events: RunEvent[]) => {
    const fresh = events.filter((e) => e.seq > last).sort((a, b) => a.seq - b.seq);
    if (fresh.length === 0) return;
    last = fresh[fresh.length - 1].seq;
    options.onEvents(fresh);
  };

  const rearm = () => {
    if (quiet) clearTimeout(quiet);
    quiet = stopped ? null : setTimeout(() => void catchUp(), reconcileMs);
  };

  async function catchUp(): Promise<void> {
    if (stopped) return;
    if (catching.busy) {
      catching.again = true;
      return;
    }
    catching.busy = true;
    rearm();
    try {
      for (;;) {
        const page = await options.fetchPage(last);
        if (stopped) return;
        deliver(page.events);
        if (page.finished && page.events.length > 0) continue; // a finished run's log is read to its end
        if (page.finished) {
          end();
          options.onState("finished");
          return;
        }
        if (!catching.again) break;
        catching.again = false;
      }
    } catch (error) {
      if (!stopped) options.onState("reconnecting", error instanceof Error ? error.message : String(error));
    } finally {
      catching.busy = false;
    }
  }

  const refuse = (message: string) => {
    if (stopped) return;
    end();
    options.onRefused(message, last);
  };

  options.onState("connecting");
  leave = options.open({
    onEvent: (event) => {
      if (stopped || typeof event?.seq !== "number" || event.seq <= last) return;
      rearm();
      if (event.seq === last + 1) {
        deliver([event]);
        if (!event.type.startsWith("run.")) return; // only a run event can end the run: ask the API then
      }
      void catchUp(); // a gap, or a run event
    },
    onStatus: (status, message) => {
      if (stopped) return;
      if (status === "SUBSCRIBED") {
        subscribedOnce = true;
        options.onState("live", dropped ? "rejoined" : undefined);
        void catchUp();
      } else if (status === "CHANNEL_ERROR" && isRefusal(message)) {
        refuse(message!);
      } else if (status === "TIMED_OUT" && !subscribedOnce) {
        refuse("Realtime did not answer the subscription");
      } else if (status === "CLOSED") {
        refuse("Realtime closed the subscription");
      } else {
        dropped = true; // a lost socket: supabase-js reconnects and joins again
        options.onState("reconnecting", message);
      }
    },
  });
  if (stopped) leave?.(); // refused synchronously
  return { stop: end };
}
