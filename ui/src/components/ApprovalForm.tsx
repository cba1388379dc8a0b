// A step waiting for approval: its rendered message, a form built from its declared fields,
// Approve, and Reject with a reason. A 422 puts the server's words next to the field it
// names; a 409 (answered elsewhere, timed out, cancelled) refreshes the run view.
import { useState } from "react";
import { ApiError } from "../lib/api";
import { errorsByField, formValues, initialValue, type RawValue } from "../lib/kinds";
import { renderMarkdown } from "../lib/markdown";
import { stepsApi } from "../lib/stepsApi";
import { when } from "../lib/format";
import type { ApprovalField, Run, Step } from "../lib/types";

export function ApprovalForm({ runId, step, onRun, onStale }: { runId: string; step: Step; onRun: (run: Run) => void; onStale: (message: string) => void }) {
  const fields = step.waiting?.fields ?? [];
  const [raw, setRaw] = useState<Record<string, RawValue>>(() => Object.fromEntries(fields.map((f) => [f.name, initialValue(f)])));
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<"approve" | "reject" | null>(null);
  const base = `approval-${step.id.replace(/\W/g, "_")}`;

  const send = async (action: "approve" | "reject") => {
    let call: () => Promise<Run>;
    if (action === "approve") {
      const { values, errors: found } = formValues(fields, raw);
      setErrors(found);
      if (Object.keys(found).length) return;
      call = () => stepsApi.approve(runId, step.id, values);
    } else {
      setErrors({});
      call = () => stepsApi.reject(runId, step.id, reason.trim());
    }
    setBusy(action);
    try {
      onRun(await call());
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) onStale(`Step ${step.id} is no longer waiting: ${e.message}`);
      else if (e instanceof ApiError && e.status === 422) {
        const names = [...fields.map((f) => f.name), "reason"];
        const byField = e.errors.length ? errorsByField(e.errors, names) : { "": e.message };
        if (action === "reject" && byField[""] && !byField.reason) (byField.reason = byField[""]), delete byField[""];
        setErrors(byField);
      } else setErrors({ "": e instanceof Error ? e.message : String(e) });
    } finally {
      setBusy(null);
    }
  };

  const message = step.waiting?.message;
  const expires = step.waiting?.until;
  return (
    <section className="card approval" aria-labelledby={`${base}-title`}>
      <h2 id={`${base}-title`}>
        Approval needed: <code>{step.id}</code>
      </h2>
      {message ? <div className="markdown approval-message" dangerouslySetInnerHTML={{ __html: renderMarkdown(message) }} /> : <p className="muted">The step asks for an answer before the run goes on.</p>}
      {expires && <p className="hint">If nobody answers by {when(expires)}, the step times out.</p>}
      <div className="approval-body">
        <form
          className="form approval-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void send("approve");
          }}
        >
          {fields.map((f) => (
            <FieldInput key={f.name} base={base} field={f} value={raw[f.name] ?? initialValue(f)} error={errors[f.name]} onChange={(v) => setRaw((old) => ({ ...old, [f.name]: v }))} />
          ))}
          {errors[""] && (
            <p className="field-error" role="alert">
              {errors[""]}
            </p>
          )}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={busy !== null}>
              {busy === "approve" ? "Approving…" : "Approve"}
            </button>
          </div>
        </form>
        <div className="approval-reject">
          <div className="field-row">
            <label htmlFor={`${base}-reason`}>Reason for rejecting</label>
            <textarea
              id={`${base}-reason`}
              rows={2}
              value={reason}
              aria-invalid={errors.reason ? true : undefined}
              aria-describedby={errors.reason ? `${base}-reason-err` : undefined}
              onChange={(e) => setReason(e.target.value)}
            />
            {errors.reason && (
              <span id={`${base}-reason-err`} className="field-error">
                {errors.reason}
              </span>
            )}
          </div>
          <button type="button" className="danger" disabled={busy !== null} onClick={() => void send("reject")}>
            {busy === "reject" ? "Rejecting…" : "Reject"}
          </button>
        </div>
      </div>
    </section>
  );
}

function FieldInput({ base, field, value, error, onChange }: { base: string; field: ApprovalField; value: RawValue; error?: string; onChange: (v: RawValue) => void }) {
  const id = `${base}-f-${field.name}`;
  const hint = field.type === "array" ? "One item per line." : "";
  const described = [field.description || hint ? `${id}-desc` : "", error ? `${id}-err` : ""].filter(Boolean).join(" ") || undefined;
  const common = { id, name: field.name, "aria-describedby": described, "aria-invalid": error ? true : undefined };
  return (
    <div className="field-row">
      {field.type === "boolean" ? (
        <label className="check">
          <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.target.checked)} /> {field.name}
        </label>
      ) : (
        <>
          <label htmlFor={id}>
            {field.name} <span className="muted">({field.type === "array" ? "list" : field.type})</span>
          </label>
          {field.type === "array" ? (
            <textarea {...common} rows={3} value={String(value)} onChange={(e) => onChange(e.target.value)} />
          ) : (
            <input
              {...common}
              type={field.type === "string" ? "text" : "number"}
              step={field.type === "integer" ? 1 : field.type === "number" ? "any" : undefined}
              value={String(value)}
              onChange={(e) => onChange(e.target.value)}
            />
          )}
        </>
      )}
      {(field.description || hint) && (
        <span id={`${id}-desc`} className="hint">
          {[field.description, hint].filter(Boolean).join(" ")}
        </span>
      )}
      {error && (
        <span id={`${id}-err`} className="field-error">
          {error}
        </span>
      )}
    </div>
  );
}
