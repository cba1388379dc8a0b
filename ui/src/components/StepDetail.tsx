import type { ReactNode } from "react";
import { renderMarkdown } from "../lib/markdown";
import { duration, tokens } from "../lib/format";
import type { ShownStatus, Step } from "../lib/types";
import { CopyButton, StatusBadge } from "./ui";
import { JsonTree } from "./JsonTree";

export function Answer({ step }: { step: Step }) {
  if (step.outputs && Object.keys(step.outputs).length) return <JsonTree value={step.outputs} label={`Structured output of ${step.id}`} />;
  if (step.output === null || step.output === undefined) return <p className="muted">No answer yet.</p>;
  return <div className="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(step.output) }} />;
}

export function StepDetail({ step, status, onClose, children }: { step: Step; status: ShownStatus; onClose: () => void; children?: ReactNode }) {
  const outputsText = step.outputs ? JSON.stringify(step.outputs, null, 2) : null;
  return (
    <article className="step-detail card" aria-labelledby="step-detail-title">
      <header className="detail-head">
        <h2 id="step-detail-title">
          Step <code>{step.id}</code>
        </h2>
        <StatusBadge status={status} />
        <button type="button" className="small" onClick={onClose}>
          Close
        </button>
      </header>
      {children}
      <dl className="facts">
        <div>
          <dt>Model</dt>
          <dd>{step.model ?? "–"}</dd>
        </div>
        <div>
          <dt>Tokens</dt>
          <dd>
            {tokens(step.usage?.total_tokens)}{" "}
            <span className="muted">
              ({tokens(step.usage?.prompt_tokens)} in, {tokens(step.usage?.completion_tokens)} out)
            </span>
          </dd>
        </div>
        <div>
          <dt>Latency</dt>
          <dd>{duration(step.latency_ms)}</dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd>{step.attempt}</dd>
        </div>
      </dl>
      {step.error && (
        <section className="detail-section">
          <h3>Error</h3>
          <p className="error-text">
            <code>{step.error.type}</code> {step.error.message}
          </p>
        </section>
      )}
      <section className="detail-section">
        <div className="section-head">
          <h3>Answer</h3>
          {step.output !== null && <CopyButton text={outputsText ?? step.output ?? ""} label="Copy answer" />}
        </div>
        <Answer step={step} />
      </section>
      {outputsText && (
        <section className="detail-section">
          <div className="section-head">
            <h3>Outputs (JSON)</h3>
            <CopyButton text={outputsText} label="Copy outputs" />
          </div>
          <pre className="pre">{outputsText}</pre>
        </section>
      )}
      <section className="detail-section">
        <div className="section-head">
          <h3>Prompt sent</h3>
          {step.prompt && <CopyButton text={step.prompt} label="Copy prompt" />}
        </div>
        {step.prompt ? <pre className="pre">{step.prompt}</pre> : <p className="muted">Not rendered yet: the step has not started.</p>}
      </section>
    </article>
  );
}
