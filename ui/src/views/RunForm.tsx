// A form generated from the workflow's declared inputs: type, default, description and
// whether it is required; the run mode and an optional webhook URL.
import { useEffect, useState } from "react";
import { api, ApiError } from "../lib/api";
import { href, navigate } from "../lib/router";
import type { InputSpec, Workflow } from "../lib/types";
import { ErrorBox, Spinner } from "../components/ui";

type Values = Record<string, string | boolean>;

function initial(spec: InputSpec): string | boolean {
  const d = spec.default;
  if (spec.type === "boolean") return d === true;
  if (d === undefined || d === null) return "";
  if (spec.type === "array" || spec.type === "object") return JSON.stringify(d, null, 2);
  return String(d);
}

/** The typed value of a field, or an error message. */
export function convert(name: string, spec: InputSpec, raw: string | boolean): { value?: unknown; error?: string; omit?: boolean } {
  const type = spec.type ?? "string";
  if (type === "boolean") return { value: Boolean(raw) };
  const text = String(raw);
  if (text.trim() === "") {
    if (!("default" in spec)) return { error: `${name} is required` };
    return { omit: true };
  }
  if (type === "integer") return /^-?\d+$/.test(text.trim()) ? { value: Number(text) } : { error: `${name} must be a whole number` };
  if (type === "number") return Number.isFinite(Number(text)) ? { value: Number(text) } : { error: `${name} must be a number` };
  if (type === "array" || type === "object") {
    try {
      const v = JSON.parse(text);
      if (type === "array" ? !Array.isArray(v) : typeof v !== "object" || v === null || Array.isArray(v)) return { error: `${name} must be a JSON ${type}` };
      return { value: v };
    } catch {
      return { error: `${name} must be JSON (${type === "array" ? '["a", "b"]' : '{"key": "value"}'})` };
    }
  }
  return { value: text };
}

export default function RunForm({ workflowId }: { workflowId: string }) {
  const [wf, setWf] = useState<Workflow | null>(null);
  const [values, setValues] = useState<Values>({});
  const [mode, setMode] = useState<"auto" | "step">("auto");
  const [webhook, setWebhook] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api
      .getWorkflow(workflowId)
      .then((w) => {
        setWf(w);
        setValues(Object.fromEntries(Object.entries(w.spec.inputs ?? {}).map(([k, s]) => [k, initial(s)])));
      })
      .catch(setError);
  }, [workflowId]);

  if (!wf) return <section className="page">{error ? <ErrorBox error={error} /> : <Spinner label="Loading the workflow…" />}</section>;
  const inputs = Object.entries(wf.spec.inputs ?? {});

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    const body: Record<string, unknown> = {};
    for (const [name, spec] of inputs) {
      const r = convert(name, spec, values[name] ?? "");
      if (r.error) found[name] = r.error;
      else if (!r.omit) body[name] = r.value;
    }
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    setError(null);
    try {
      const run = await api.startRun(wf.id, { inputs: body, mode, webhook_url: webhook.trim() || null });
      navigate(href.run(run.id));
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) {
        const byField: Record<string, string> = {};
        for (const item of err.errors) byField[item.path.replace(/^(body\.)?inputs\./, "").replace(/^body\./, "")] = item.message;
        setErrors(byField);
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="page narrow">
      <p className="crumbs">
        <a href={href.workflows()}>Workflows</a> / <a href={href.edit(wf.id)}>{wf.name}</a> / Run
      </p>
      <h1>Run “{wf.name}”</h1>
      {wf.description && <p className="muted">{wf.description}</p>}
      <form className="card form" onSubmit={submit} noValidate>
        <fieldset>
          <legend>Inputs</legend>
          {inputs.length === 0 && <p className="muted">This workflow takes no inputs.</p>}
          {inputs.map(([name, spec]) => {
            const id = `input-${name}`;
            const required = !("default" in spec);
            const type = spec.type ?? "string";
            const described = [spec.description ? `${id}-desc` : "", errors[name] ? `${id}-err` : ""].filter(Boolean).join(" ") || undefined;
            const common = {
              id,
              name,
              "aria-describedby": described,
              "aria-invalid": errors[name] ? true : undefined,
              required,
            };
            return (
              <div className="field-row" key={name}>
                {type === "boolean" ? (
                  <label className="check">
                    <input type="checkbox" {...common} checked={values[name] === true} onChange={(e) => setValues({ ...values, [name]: e.target.checked })} /> {name}
                  </label>
                ) : (
                  <>
                    <label htmlFor={id}>
                      {name} {required ? <span className="req">(required)</span> : <span className="muted">({type})</span>}
                    </label>
                    {type === "array" || type === "object" || (type === "string" && String(values[name] ?? "").length > 60) ? (
                      <textarea {...common} rows={3} value={String(values[name] ?? "")} onChange={(e) => setValues({ ...values, [name]: e.target.value })} />
                    ) : (
                      <input
                        {...common}
                        type={type === "integer" || type === "number" ? "number" : "text"}
                        step={type === "number" ? "any" : undefined}
                        value={String(values[name] ?? "")}
                        onChange={(e) => setValues({ ...values, [name]: e.target.value })}
                      />
                    )}
                  </>
                )}
                {spec.description && (
                  <span id={`${id}-desc`} className="hint">
                    {spec.description}
                  </span>
                )}
                {errors[name] && (
                  <span id={`${id}-err`} className="field-error">
                    {errors[name]}
                  </span>
                )}
              </div>
            );
          })}
        </fieldset>
        <fieldset>
          <legend>Mode</legend>
          <label className="check">
            <input type="radio" name="mode" value="auto" checked={mode === "auto"} onChange={() => setMode("auto")} /> Automatic: run every step
          </label>
          <label className="check">
            <input type="radio" name="mode" value="step" checked={mode === "step"} onChange={() => setMode("step")} /> Step by step: pause after each step
          </label>
        </fieldset>
        <div className="field-row">
          <label htmlFor="webhook">Webhook URL (optional)</label>
          <input id="webhook" type="url" value={webhook} placeholder="https://example.com/hooks/orchestrate" onChange={(e) => setWebhook(e.target.value)} aria-describedby="webhook-desc" />
          <span id="webhook-desc" className="hint">
            Notified with a signed request when the run ends.
          </span>
        </div>
        <ErrorBox error={error} />
        <div className="form-actions">
          <button type="submit" className="primary big" disabled={busy}>
            {busy ? "Starting…" : "Run"}
          </button>
          <a href={href.edit(wf.id)}>Back to the editor</a>
        </div>
      </form>
    </section>
  );
}
