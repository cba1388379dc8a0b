import { useEffect, useState } from "react";
import { api } from "../lib/api";
import { duration, tokens, when } from "../lib/format";
import { href, navigate } from "../lib/router";
import type { RunSummary, WorkflowSummary } from "../lib/types";
import { ErrorBox, Spinner, StatusBadge } from "../components/ui";

const STATUSES = ["queued", "running", "paused", "succeeded", "failed", "cancelled"];
const PAGE = 25;

export function History({ workflowId, status }: { workflowId: string; status: string }) {
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [workflows, setWorkflows] = useState<WorkflowSummary[]>([]);
  const [picked, setPicked] = useState<string[]>(() => {
    const pick = new URLSearchParams(window.location.hash.split("?")[1] ?? "").get("pick");
    return pick ? [pick] : [];
  });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.listWorkflows({ limit: 200 }).then((p) => setWorkflows(p.items)).catch(setError);
  }, []);

  useEffect(() => {
    let live = true;
    setRuns(null);
    api
      .listRuns({ workflow_id: workflowId || undefined, status: status || undefined, limit: PAGE })
      .then((p) => {
        if (!live) return;
        setRuns(p.items);
        setCursor(p.next_cursor);
      })
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [workflowId, status]);

  const more = async () => {
    setBusy(true);
    try {
      const p = await api.listRuns({ workflow_id: workflowId || undefined, status: status || undefined, cursor, limit: PAGE });
      setRuns((old) => [...(old ?? []), ...p.items]);
      setCursor(p.next_cursor);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const toggle = (id: string) => setPicked((old) => (old.includes(id) ? old.filter((x) => x !== id) : [...old.slice(-1), id]));

  return (
    <section className="page">
      <div className="page-head">
        <div>
          <h1>Runs</h1>
          <p className="muted">Every run, newest first. Tick two runs and press Compare to see them side by side.</p>
        </div>
        <button type="button" className="primary" disabled={picked.length !== 2} onClick={() => navigate(href.compare(picked[0], picked[1]))} aria-describedby="compare-hint">
          Compare
        </button>
      </div>
      <p id="compare-hint" className="hint">
        {picked.length === 2 ? "Two runs selected." : `Select ${2 - picked.length} more run${picked.length === 1 ? "" : "s"} to compare.`}
      </p>
      <div className="toolbar filters">
        <label>
          Workflow{" "}
          <select value={workflowId} onChange={(e) => navigate(href.history(e.target.value, status), true)}>
            <option value="">All workflows</option>
            {workflows.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status{" "}
          <select value={status} onChange={(e) => navigate(href.history(workflowId, e.target.value), true)}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      {runs === null ? (
        <Spinner label="Loading runs…" />
      ) : runs.length === 0 ? (
        <p className="empty">No runs{workflowId || status ? " match these filters" : " yet: open a workflow and press Run"}.</p>
      ) : (
        <table className="runs-table">
          <thead>
            <tr>
              <th scope="col">
                <span className="visually-hidden">Select</span>
              </th>
              <th scope="col">Workflow</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Tokens</th>
              <th scope="col">Run</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id} className={picked.includes(r.id) ? "picked" : undefined}>
                <td>
                  <input type="checkbox" checked={picked.includes(r.id)} onChange={() => toggle(r.id)} aria-label={`Select run ${r.id.slice(0, 8)} for comparison`} />
                </td>
                <td>{r.workflow ?? "inline"}</td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>{when(r.created_at)}</td>
                <td>{duration(r.duration_ms)}</td>
                <td>{tokens(r.usage?.total_tokens)}</td>
                <td>
                  <a href={href.run(r.id)}>
                    Open <code>{r.id.slice(0, 8)}</code>
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" onClick={more} disabled={busy}>
          {busy ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
