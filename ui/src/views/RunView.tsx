import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { api, downloadBlob, freshAuthHeaders } from "../lib/api";
import { useConfig, useLive } from "../lib/authMode";
import { explainRefusal, followLive } from "../lib/live";
import { dependencies, type SpecStep } from "../lib/deps";
import { duration, tokens, when } from "../lib/format";
import { href, navigate } from "../lib/router";
import { allowedControls, applyEvents, elapsedMs, FINISHED, lastEvents, shownStatus, totalTokens, type Control } from "../lib/runState";
import { followRun, type StreamState } from "../lib/sse";
import type { Run, RunEvent, ShownStatus, Step, StoredExport } from "../lib/types";
import { CopyButton, ErrorBox, Spinner, StatusBadge } from "../components/ui";
import { StepDetail } from "../components/StepDetail";
import { Approvals, Lineage, StepKindFacts } from "../components/StepKind";
import { RerunDialog } from "../components/RerunDialog";
import { baseId, specKind, waitingText } from "../lib/kinds";

const Graph = lazy(() => import("../components/Graph"));

// Above this many steps the graph (hundreds of DOM nodes and edges) is drawn on request.
const BIG_RUN = 150;

const ENDED_STEP = new Set<ShownStatus>(["succeeded", "failed", "skipped", "cancelled"]);

const LABELS: Record<Control, string> = { pause: "Pause", resume: "Resume", step: "Step", cancel: "Cancel", retry: "Retry" };

export default function RunView({ runId, step }: { runId: string; step: string | null }) {
  const [base, setBase] = useState<{ run: Run; seq: number } | null>(null);
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [stream, setStream] = useState<{ state: StreamState; detail?: string; dropped: boolean }>({ state: "connecting", dropped: false });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<Control | null>(null);
  const [deps, setDeps] = useState<Map<string, string[]>>(new Map());
  // Each step's kind as the workflow writes it, for a server whose step JSON has no `kind`.
  const [specKinds, setSpecKinds] = useState<Map<string, string>>(new Map());
  const [rerunFrom, setRerunFrom] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [follow, setFollow] = useState(0);
  const [showGraph, setShowGraph] = useState(false);
  // Realtime (a Supabase project): subscribed at once, before the run is read. A refusal
  // is shown, and the events stream takes over.
  const live = useLive();
  const [refused, setRefused] = useState<string | null>(null);
  const config = useConfig();
  const [stored, setStored] = useState<StoredExport | null>(null);
  const lastSeq = useRef(0);
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  // The full run (outputs, tokens) is fetched again after events, at most once a second.
  const fetching = useRef<{ busy: boolean; again: boolean }>({ busy: false, again: false });
  const refetch = useCallback(async (): Promise<void> => {
    if (fetching.current.busy) {
      fetching.current.again = true;
      return;
    }
    fetching.current.busy = true;
    const seq = lastSeq.current;
    try {
      const run = await api.getRun(runId);
      setBase((old) => (old && old.seq > seq ? old : { run, seq }));
    } catch (e) {
      setError(e);
    } finally {
      fetching.current.busy = false;
      if (fetching.current.again) {
        fetching.current.again = false;
        setTimeout(() => void refetch(), 1000);
      }
    }
  }, [runId]);
  // Events are applied in batches: one render per frame-ish, however fast they come.
  const pending = useRef<RunEvent[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  // First load: the run, then the workflow's graph.
  useEffect(() => {
    setBase(null);
    setEvents([]);
    setRefused(null);
    setStored(null);
    lastSeq.current = 0;
    api
      .getRun(runId)
      .then((run) => {
        setBase({ run, seq: 0 });
        if (run.workflow_id)
          api
            .getWorkflow(run.workflow_id)
            .then((wf) => {
              setDeps(dependencies((wf.spec.steps ?? []) as SpecStep[], (wf.spec as { conversation?: boolean }).conversation));
              setSpecKinds(new Map((wf.spec.steps ?? []).map((s) => [s.id, specKind(s)])));
            })
            .catch(() => setDeps(new Map())); // the workflow was deleted: steps without edges
      })
      .catch(setError);
  }, [runId]);

  const finished = base ? FINISHED.has(applyEvents(base.run, events.filter((e) => e.seq > base.seq)).status) : false;

  // Follow the events; restarted after a Retry or Resume of a finished run.
  const realtime = live && !refused ? live : null;
  useEffect(() => {
    if (live === undefined) return; // the mode is not known yet
    const onEvents = (fresh: RunEvent[]) => {
      lastSeq.current = fresh[fresh.length - 1].seq;
      pending.current.push(...fresh);
      flushTimer.current ??= setTimeout(() => {
        flushTimer.current = null;
        const batch = pending.current;
        pending.current = [];
        setEvents((old) => old.concat(batch));
      }, 150);
      if (refetchTimer.current) clearTimeout(refetchTimer.current);
      refetchTimer.current = setTimeout(() => void refetch(), 250);
    };
    const onState = (state: StreamState, detail?: string) =>
      setStream((old) => {
        if (state === "live" && old.dropped) void refetch(); // caught up after a drop
        return { state, detail, dropped: state === "reconnecting" ? true : state === "live" || state === "polling" ? old.dropped : old.dropped };
      });
    if (realtime) {
      const f = followLive({
        runId,
        after: lastSeq.current,
        open: realtime.open(runId),
        fetchPage: (after) => api.events(runId, after),
        onEvents,
        onState,
        onRefused: (message) => setRefused(explainRefusal(message, runId)),
      });
      return () => f.stop();
    }
    // A run that had ended when it was opened has nothing more to say: no stream.
    if (!base || (finished && follow === 0)) {
      if (base && finished) setStream({ state: "finished", dropped: false });
      return;
    }
    const f = followRun({
      runId,
      after: lastSeq.current,
      headers: freshAuthHeaders,
      onUnauthorized: () => void api.getRun(runId).catch(() => undefined), // api.request signs out on the 401
      onEvents,
      onState,
    });
    return () => f.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId, realtime ? "realtime" : base === null, follow, live]);

  const run = useMemo(() => (base ? applyEvents(base.run, events.filter((e) => e.seq > base.seq)) : null), [base, events]);
  const last = useMemo(() => lastEvents(events), [events]);

  useEffect(() => {
    if (!run || FINISHED.has(run.status)) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [run?.status]); // eslint-disable-line react-hooks/exhaustive-deps

  const select = useCallback((id: string | null) => navigate(href.run(runId, id ?? undefined), true), [runId]);

  if (!run)
    return (
      <section className="page">
        {refused && (
          <p className="error-box" role="status">
            {refused}
          </p>
        )}
        {error ? <ErrorBox error={error} /> : <Spinner label="Loading the run…" />}
      </section>
    );

  const control = async (action: Control) => {
    setBusy(action);
    setError(null);
    try {
      const updated = await api.control(run.id, action);
      setBase({ run: updated, seq: lastSeq.current });
      if (!FINISHED.has(updated.status)) setFollow((n) => n + 1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const exportAs = async (format: "json" | "md") => {
    try {
      const blob = await api.exportRun(run.id, format);
      downloadBlob(blob, `run-${run.id.slice(0, 8)}.${format}`);
    } catch (e) {
      setError(e);
    }
  };

  const storeExport = async () => {
    setStored(null);
    setError(null);
    try {
      setStored(await api.storeExport(run.id, "md"));
    } catch (e) {
      setError(e); // a Storage outage is a 503 whose message says so; the plain export still works
    }
  };

  const statuses = new Map<string, ShownStatus>(run.steps.map((s) => [s.id, shownStatus(s, last)]));
  const counts = new Map<ShownStatus, number>();
  statuses.forEach((s) => counts.set(s, (counts.get(s) ?? 0) + 1));
  const selected = step ? run.steps.find((s) => s.id === step) ?? null : null;
  const ended = FINISHED.has(run.status);
  const kindOf = (s: Step): string => s.kind ?? specKinds.get(baseId(s.id)) ?? "prompt";

  return (
    <section className="page run-page">
      <p className="crumbs">
        <a href={href.history()}>Runs</a> / {run.workflow_id ? <a href={href.history(run.workflow_id)}>{run.workflow ?? "workflow"}</a> : run.workflow ?? "inline workflow"} / run{" "}
        <code>{run.id.slice(0, 8)}</code>
      </p>
      <Lineage run={run} />
      <div className="run-head">
        <div>
          <h1>
            {run.workflow ?? "Run"} <StatusBadge status={run.status} />
          </h1>
          <dl className="facts inline">
            <div>
              <dt>Elapsed</dt>
              <dd>{duration(elapsedMs(run, now))}</dd>
            </div>
            <div>
              <dt>Tokens</dt>
              <dd>{tokens(totalTokens(run))}</dd>
            </div>
            <div>
              <dt>Steps</dt>
              <dd>
                {counts.get("succeeded") ?? 0} of {run.steps.length} succeeded
              </dd>
            </div>
            <div>
              <dt>Mode</dt>
              <dd>{run.mode === "step" ? "step by step" : "automatic"}</dd>
            </div>
            <div>
              <dt>Started</dt>
              <dd>{when(run.created_at)}</dd>
            </div>
          </dl>
        </div>
        <div className="run-controls" role="group" aria-label="Run controls">
          {allowedControls(run).map((c) => (
            <button key={c} type="button" className={c === "cancel" ? "danger-text" : c === "retry" || c === "resume" || c === "step" ? "primary" : ""} disabled={busy !== null} onClick={() => control(c)}>
              {LABELS[c]}
            </button>
          ))}
          {allowedControls(run).length > 0 && <span className="divider" aria-hidden="true" />}
          <button type="button" onClick={() => exportAs("json")}>
            Export JSON
          </button>
          <button type="button" onClick={() => exportAs("md")}>
            Export Markdown
          </button>
          {config?.stored_exports && (
            <button type="button" onClick={storeExport} title="Save the Markdown report in Supabase Storage and get a download link">
              Store export
            </button>
          )}
          <a className="button" href={`${href.history(run.workflow_id ?? undefined)}${run.workflow_id ? "&" : "?"}pick=${run.id}`}>
            Compare
          </a>
          {run.workflow_id && (
            <a className="button" href={href.runForm(run.workflow_id)}>
              Run again
            </a>
          )}
        </div>
      </div>
      <ConnectionNote state={stream.state} dropped={stream.dropped} ended={ended} realtime={realtime !== null} />
      {refused && (
        <p className="notice" role="status">
          {refused}
        </p>
      )}
      {stored && (
        <p className="notice stored-export" role="status">
          Stored as <code>{stored.key.split("/").pop()}</code>:{" "}
          <a href={stored.url} target="_blank" rel="noopener noreferrer">
            download the stored export
          </a>{" "}
          (the link works until {when(stored.expires_at)}). <CopyButton text={stored.url} label="Copy link" />
        </p>
      )}
      {run.status === "paused" && run.mode === "step" && (
        <p className="notice" role="status">
          Step-by-step mode: the run waits. Press <strong>Step</strong> to run the next step, or <strong>Resume</strong>.
        </p>
      )}
      {run.error && (
        <p className="error-box" role="status">
          {run.error.step_id ? (
            <>
              Step <code>{run.error.step_id}</code> failed:{" "}
            </>
          ) : null}
          {run.error.message}
        </p>
      )}
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <Approvals
        run={run}
        onRun={(updated) => {
          setNotice(null);
          setBase({ run: updated, seq: lastSeq.current });
        }}
        onStale={(message) => {
          setNotice(message);
          void refetch();
        }}
      />
      <div className="run-body">
        {run.steps.length > BIG_RUN && !showGraph ? (
          <div className="card graph-off">
            <p>
              This run has {run.steps.length} steps: the graph is left out so the view stays quick. The list below shows every step.
            </p>
            <button type="button" onClick={() => setShowGraph(true)}>
              Show the graph
            </button>
          </div>
        ) : (
        <Suspense fallback={<Spinner label="Drawing the graph…" />}>
          <Graph
            label="Run graph"
            steps={run.steps.map((s) => ({
              id: s.id,
              status: statuses.get(s.id),
              kind: kindOf(s),
              reused: s.reused,
              label: s.status === "waiting" ? waitingText(s.waiting, kindOf(s)) : undefined,
              detail: s.reused ? "reused" : s.latency_ms !== null && statuses.get(s.id) === "succeeded" ? duration(s.latency_ms) : s.attempt > 1 ? `attempt ${s.attempt}` : undefined,
            }))}
            deps={deps}
            selected={step}
            onSelect={select}
          />
        </Suspense>
        )}
        <div className="run-columns">
          <StepList steps={run.steps} statuses={statuses} selected={step} onSelect={select} />
          {selected ? (
            <StepDetail step={selected} status={statuses.get(selected.id) ?? selected.status} onClose={() => select(null)}>
              <StepKindFacts
                step={selected}
                kind={kindOf(selected)}
                actions={
                  ended && ENDED_STEP.has(statuses.get(selected.id) ?? selected.status) ? (
                    <button type="button" className="small" onClick={() => setRerunFrom(baseId(selected.id))}>
                      Rerun from here
                    </button>
                  ) : null
                }
              />
            </StepDetail>
          ) : (
            <div className="card step-detail placeholder">
              <p className="muted">Select a step in the graph or the list to see its prompt, answer, tokens and timing.</p>
              {run.outputs && (
                <>
                  <h2>Run outputs</h2>
                  <pre className="pre">{JSON.stringify(run.outputs, null, 2)}</pre>
                </>
              )}
            </div>
          )}
        </div>
      </div>
      {rerunFrom && <RerunDialog run={run} from={rerunFrom} deps={deps} onClose={() => setRerunFrom(null)} />}
    </section>
  );
}

function ConnectionNote({ state, dropped, ended, realtime }: { state: StreamState; dropped: boolean; ended: boolean; realtime: boolean }) {
  let text: string;
  let cls = "conn";
  if (state === "reconnecting") {
    text = "Live updates lost: reconnecting… Statuses may be behind until then.";
    cls += " conn-lost";
  } else if (state === "connecting") text = "Connecting to live updates…";
  else if (state === "finished" || ended) text = dropped ? "Reconnected and caught up. The run has ended." : "The run has ended.";
  else text = dropped ? "Reconnected: caught up with every event. Live." : state === "polling" ? "Live (polling)." : realtime ? "Live (Realtime)." : "Live.";
  return (
    <p className={cls} role="status" aria-live="polite" data-stream={state} data-transport={realtime ? "realtime" : "events"}>
      <span className="conn-dot" aria-hidden="true" /> {text}
    </p>
  );
}

function StepList({ steps, statuses, selected, onSelect }: { steps: Step[]; statuses: Map<string, ShownStatus>; selected: string | null; onSelect: (id: string) => void }) {
  const parent = useRef<HTMLDivElement>(null);
  // Virtualized: a 500-step run renders only the rows in view.
  const virtual = useVirtualizer({ count: steps.length, getScrollElement: () => parent.current, estimateSize: () => 44, overscan: 8 });
  return (
    <div className="step-list card">
      <h2 className="list-title">Steps</h2>
      <div ref={parent} className="step-scroll">
        <ul style={{ height: virtual.getTotalSize(), position: "relative" }} aria-label="Steps of this run">
          {virtual.getVirtualItems().map((item) => {
            const s = steps[item.index];
            const status = statuses.get(s.id) ?? s.status;
            return (
              <li key={s.id} style={{ position: "absolute", top: 0, left: 0, right: 0, transform: `translateY(${item.start}px)`, height: item.size }}>
                <button type="button" className={`step-row ${selected === s.id ? "selected" : ""}`} aria-pressed={selected === s.id} onClick={() => onSelect(s.id)}>
                  <span className="step-row-id">{s.id}</span>
                  <span className={`status status-${status}`}>{s.reused ? `${status} · reused` : status}</span>
                  <span className="step-row-meta">{s.latency_ms !== null ? duration(s.latency_ms) : ""}</span>
                </button>
              </li>
            );
          })}
        </ul>
      </div>
    </div>
  );
}
