// "Rerun from here": a new run of the same workflow snapshot that reuses every recorded
// output not downstream of the chosen step. The dialog can change the run's inputs and the
// output of one earlier step, then starts the rerun and opens it.
import { useEffect, useRef, useState } from "react";
import { ApiError } from "../lib/api";
import { errorsByField, inputKind, inputText, outputText, parseInput, parseOutput, reusable, type RawValue } from "../lib/kinds";
import { href, navigate } from "../lib/router";
import { stepsApi } from "../lib/stepsApi";
import type { Run } from "../lib/types";

export function RerunDialog({ run, from, deps, onClose }: { run: Run; from: string; deps: Map<string, string[]>; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const names = Object.keys(run.inputs ?? {});
  const [inputs, setInputs] = useState<Record<string, RawValue>>(() => Object.fromEntries(names.map((n) => [n, inputText(run.inputs[n])])));
  const earlier = reusable(run.steps, deps, from);
  const [edited, setEdited] = useState("");
  const [output, setOutput] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);

  const pick = (id: string) => {
    setEdited(id);
    const step = run.steps.find((s) => s.id === id);
    setOutput(step ? outputText(step) : "");
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    const body: { from: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> } = { from };
    // Only what changed: the others keep the source run's values.
    const changed: Record<string, unknown> = {};
    for (const n of names) {
      const r = parseInput(inputKind(run.inputs[n]), inputs[n]);
      if ("error" in r) found[`inputs.${n}`] = `${n} ${r.error}`;
      else if (JSON.stringify(r.value) !== JSON.stringify(run.inputs[n])) changed[n] = r.value;
    }
    if (Object.keys(changed).length) body.inputs = changed;
    const step = run.steps.find((s) => s.id === edited);
    if (step) {
      const r = parseOutput(step, output);
      if ("error" in r) found.output = `The output ${r.error}`;
      else body.outputs = { [step.id]: r.value };
    }
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const created = await stepsApi.rerun(run.id, body);
      onClose();
      navigate(href.run(created.id));
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) {
        // `body.outputs.<step>` lands under the output, `body.inputs.<name>` under that input.
        const onOutput = err.errors.filter((i) => /^(body\.)?outputs\b/.test(i.path));
        const byInput = errorsByField(err.errors.filter((i) => !onOutput.includes(i)), names, "inputs");
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(byInput)) out[k ? `inputs.${k}` : ""] = v;
        if (onOutput.length) out.output = onOutput.map((i) => i.message).join("; ");
        setErrors(out);
      } else setErrors({ "": err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="dialog rerun-dialog" aria-labelledby="rerun-title" onCancel={(e) => (e.preventDefault(), onClose())}>
      <form onSubmit={submit} noValidate>
        <h2 id="rerun-title">
          Rerun from <code>{from}</code>
        </h2>
        <p className="muted">
          A new run of the same workflow version. Steps before <code>{from}</code> keep their recorded outputs (no model call, no tokens); <code>{from}</code> and the steps after it run again.
        </p>
        {names.length > 0 && (
          <fieldset className="rerun-inputs">
            <legend>Run inputs</legend>
            {names.map((n) => {
              const kind = inputKind(run.inputs[n]);
              const id = `rerun-input-${n}`;
              const error = errors[`inputs.${n}`];
              const common = { id, "aria-invalid": error ? true : undefined, "aria-describedby": error ? `${id}-err` : undefined };
              return (
                <div className="field-row" key={n}>
                  {kind === "boolean" ? (
                    <label className="check">
                      <input type="checkbox" {...common} checked={inputs[n] === true} onChange={(e) => setInputs({ ...inputs, [n]: e.target.checked })} /> {n}
                    </label>
                  ) : (
                    <>
                      <label htmlFor={id}>{n}</label>
                      {kind === "json" || String(inputs[n]).length > 60 ? (
                        <textarea {...common} rows={3} value={String(inputs[n])} onChange={(e) => setInputs({ ...inputs, [n]: e.target.value })} />
                      ) : (
                        <input {...common} type={kind === "number" ? "number" : "text"} step={kind === "number" ? "any" : undefined} value={String(inputs[n])} onChange={(e) => setInputs({ ...inputs, [n]: e.target.value })} />
                      )}
                    </>
                  )}
                  {error && (
                    <span id={`${id}-err`} className="field-error">
                      {error}
                    </span>
                  )}
                </div>
              );
            })}
          </fieldset>
        )}
        <fieldset className="rerun-output">
          <legend>Output of an earlier step (optional)</legend>
          {earlier.length === 0 ? (
            <p className="muted">No earlier step has an output to reuse.</p>
          ) : (
            <>
              <div className="field-row">
                <label htmlFor="rerun-step">Step</label>
                <select id="rerun-step" value={edited} onChange={(e) => pick(e.target.value)}>
                  <option value="">keep every output as recorded</option>
                  {earlier.map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.id}
                    </option>
                  ))}
                </select>
              </div>
              {edited && (
                <div className="field-row">
                  <label htmlFor="rerun-output">New output of {edited}</label>
                  <textarea
                    id="rerun-output"
                    rows={6}
                    className="mono"
                    value={output}
                    aria-invalid={errors.output ? true : undefined}
                    aria-describedby={errors.output ? "rerun-output-err" : "rerun-output-hint"}
                    onChange={(e) => setOutput(e.target.value)}
                  />
                  {errors.output ? (
                    <span id="rerun-output-err" className="field-error">
                      {errors.output}
                    </span>
                  ) : (
                    <span id="rerun-output-hint" className="hint">
                      The steps after it read this instead of what it answered.
                    </span>
                  )}
                </div>
              )}
            </>
          )}
        </fieldset>
        {errors[""] && (
          <p className="field-error" role="alert">
            {errors[""]}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Starting…" : "Start the rerun"}
          </button>
        </div>
      </form>
    </dialog>
  );
}
