// The run view's parts for step kinds (issue 12): a step's kind, what it waits for, its
// child run or reuse; the run's lineage (parent run, rerun source); the approvals to answer.
import type { ReactNode } from "react";
import { isApprovalWaiting, kindLabel, waitingText } from "../lib/kinds";
import { href } from "../lib/router";
import type { Run, Step } from "../lib/types";
import { ApprovalForm } from "./ApprovalForm";
import "../steps.css";

const short = (id: string) => id.slice(0, 8);

/** Facts shown at the top of a step's detail. */
export function StepKindFacts({ step, kind, actions }: { step: Step; kind: string; actions?: ReactNode }) {
  return (
    <div className="kind-facts">
      <span className="kind-label">{kindLabel(kind)} step</span>
      {step.reused && <span className="tag tag-reused">reused: output copied from the source run</span>}
      {step.status === "waiting" && <span className="status status-waiting">{waitingText(step.waiting, kind)}</span>}
      {step.child_run_id && (
        <a href={href.run(step.child_run_id)} className="child-link">
          Child run <code>{short(step.child_run_id)}</code>
        </a>
      )}
      {actions}
    </div>
  );
}

/** Where this run comes from: the run that started it as a child, the run it reruns. */
export function Lineage({ run }: { run: Run }) {
  if (!run.parent && !run.rerun_of) return null;
  const reused = run.steps.filter((s) => s.reused).length;
  return (
    <ul className="lineage" aria-label="Lineage">
      {run.parent && (
        <li>
          Child run of <a href={href.run(run.parent.run_id, run.parent.step_id)}>run {short(run.parent.run_id)}</a>, step <code>{run.parent.step_id}</code>
        </li>
      )}
      {run.rerun_of && (
        <li>
          Rerun of <a href={href.run(run.rerun_of.run_id, run.rerun_of.from)}>run {short(run.rerun_of.run_id)}</a> from <code>{run.rerun_of.from}</code>
          {reused > 0 && (
            <span className="muted">
              {" "}
              · {reused} step{reused === 1 ? "" : "s"} reused
            </span>
          )}
        </li>
      )}
    </ul>
  );
}

/** A form for each step waiting for approval, above the graph. */
export function Approvals({ run, onRun, onStale }: { run: Run; onRun: (run: Run) => void; onStale: (message: string) => void }) {
  const waiting = run.steps.filter(isApprovalWaiting);
  if (!waiting.length) return null;
  return (
    <div className="approvals">
      {waiting.map((s) => (
        <ApprovalForm key={`${s.id}:${s.attempt}`} runId={run.id} step={s} onRun={onRun} onStale={onStale} />
      ))}
    </div>
  );
}
