// Two runs side by side: inputs, and each step's status, tokens, latency and answer, with
// a word-level diff of the answers.
import { useEffect, useState } from "react";
import { api } from "../lib/api";
import { wordDiff } from "../lib/diff";
import { duration, tokens, when } from "../lib/format";
import { href } from "../lib/router";
import { totalTokens } from "../lib/runState";
import type { Run, Step } from "../lib/types";
import { ErrorBox, Spinner, StatusBadge } from "../components/ui";

const answerText = (s: Step | undefined): string => (s ? (s.outputs ? JSON.stringify(s.outputs, null, 2) : s.output ?? "") : "");
const show = (v: unknown): string => (v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));

export default function Compare({ a, b }: { a: string; b: string }) {
  const [runs, setRuns] = useState<[Run, Run] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!a || !b) return;
    Promise.all([api.getRun(a), api.getRun(b)])
      .then(([x, y]) => setRuns([x, y]))
      .catch(setError);
  }, [a, b]);
  if (!a || !b) return <section className="page"><p>Choose two runs in the <a href={href.history()}>run history</a> to compare them.</p></section>;
  if (!runs) return <section className="page">{error ? <ErrorBox error={error} /> : <Spinner label="Loading both runs…" />}</section>;
  const [x, y] = runs;
  const ids = [...x.steps.map((s) => s.id), ...y.steps.map((s) => s.id).filter((id) => !x.steps.some((s) => s.id === id))];
  const inputs = [...new Set([...Object.keys(x.inputs), ...Object.keys(y.inputs)])];
  const stepOf = (r: Run, id: string) => r.steps.find((s) => s.id === id);

  return (
    <section className="page compare-page">
      <p className="crumbs">
        <a href={href.history()}>Runs</a> / Compare
      </p>
      <h1>Compare two runs</h1>
      <table className="compare-table">
        <caption className="visually-hidden">The two runs</caption>
        <thead>
          <tr>
            <th scope="col" className="label-col">
              <span className="visually-hidden">Field</span>
            </th>
            {[x, y].map((r, i) => (
              <th scope="col" key={r.id}>
                <span className="run-tag">{i === 0 ? "A" : "B"}</span> <a href={href.run(r.id)}>{r.workflow ?? "run"} <code>{r.id.slice(0, 8)}</code></a>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">Status</th>
            <td><StatusBadge status={x.status} /></td>
            <td><StatusBadge status={y.status} /></td>
          </tr>
          <tr>
            <th scope="row">Started</th>
            <td>{when(x.created_at)}</td>
            <td>{when(y.created_at)}</td>
          </tr>
          <tr>
            <th scope="row">Duration</th>
            <td>{duration(x.duration_ms)}</td>
            <td>{duration(y.duration_ms)}</td>
          </tr>
          <tr>
            <th scope="row">Tokens</th>
            <td>{tokens(totalTokens(x))}</td>
            <td>{tokens(totalTokens(y))}</td>
          </tr>
        </tbody>
      </table>

      <h2>Inputs</h2>
      {inputs.length === 0 ? (
        <p className="muted">Neither run had inputs.</p>
      ) : (
        <table className="compare-table">
          <thead>
            <tr>
              <th scope="col" className="label-col">Input</th>
              <th scope="col">A</th>
              <th scope="col">B</th>
            </tr>
          </thead>
          <tbody>
            {inputs.map((k) => {
              const differs = show(x.inputs[k]) !== show(y.inputs[k]);
              return (
                <tr key={k} className={differs ? "differs" : undefined}>
                  <th scope="row">
                    {k} {differs && <span className="tag">differs</span>}
                  </th>
                  <td>{show(x.inputs[k])}</td>
                  <td>{show(y.inputs[k])}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      <h2>Steps</h2>
      <p className="hint">
        In each answer, <del>struck words</del> appear only in A and <ins>underlined words</ins> only in B.
      </p>
      <ol className="compare-steps">
        {ids.map((id) => {
          const sa = stepOf(x, id);
          const sb = stepOf(y, id);
          const ta = answerText(sa);
          const tb = answerText(sb);
          const parts = wordDiff(ta, tb);
          const same = ta === tb;
          return (
            <li key={id} className="card compare-step">
              <h3>
                <code>{id}</code> {same ? <span className="tag">same answer</span> : <span className="tag tag-warn">answers differ</span>}
              </h3>
              <div className="compare-cols">
                {([["A", sa, "removed"], ["B", sb, "added"]] as const).map(([tag, s, kind]) => (
                  <div key={tag} className="compare-col">
                    <p className="compare-meta">
                      <span className="run-tag">{tag}</span> {s ? <StatusBadge status={s.status} /> : <span className="muted">not in this run</span>}
                      {s && (
                        <span className="muted">
                          {" "}
                          · {tokens(s.usage?.total_tokens)} tokens · {duration(s.latency_ms)}
                        </span>
                      )}
                    </p>
                    <div className="diff" aria-label={`Answer of ${id} in run ${tag}`}>
                      {parts.map((p, i) =>
                        p.kind === "same" ? (
                          <span key={i}>{p.text}</span>
                        ) : p.kind === kind ? (
                          kind === "removed" ? <del key={i}>{p.text}</del> : <ins key={i}>{p.text}</ins>
                        ) : null,
                      )}
                      {!ta && !tb && <span className="muted">No answer.</span>}
                    </div>
                  </div>
                ))}
              </div>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
