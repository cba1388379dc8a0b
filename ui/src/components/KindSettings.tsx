// A step card's fields for the kinds beyond prompts: the settings a card edits (the rest
// of the step stays as written in the YAML), and the "add step" kind picker.
import { KINDS, kindLabel } from "../lib/kinds";
import { KIND_SETTINGS } from "../lib/yamlEdit";
import type { StepKind } from "../lib/types";

const LABELS: Record<string, string> = {
  "http.method": "Method",
  "http.url": "URL",
  "approval.message": "Message",
  "wait.seconds": "Seconds",
  "wait.until": "Until (ISO 8601)",
  "workflow.name": "Workflow name",
  "workflow.id": "Workflow id",
};

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

export function KindSettings({ base, kind, settings, onSetting }: { base: string; kind: string; settings: Record<string, string>; onSetting: (path: string, value: string) => void }) {
  const paths = KIND_SETTINGS[kind] ?? [];
  if (!paths.length) return null;
  return (
    <div className="field-grid">
      {paths.map((path) => {
        const id = `${base}-${path.replace(".", "-")}`;
        const value = settings[path] ?? "";
        const wide = path === "http.url" || path === "approval.message";
        return (
          <div className="field-row" key={path} style={wide ? { gridColumn: "1 / -1" } : undefined}>
            <label htmlFor={id}>{LABELS[path] ?? path}</label>
            {path === "http.method" ? (
              <select id={id} value={value || "GET"} onChange={(e) => onSetting(path, e.target.value)}>
                {METHODS.map((m) => (
                  <option key={m}>{m}</option>
                ))}
              </select>
            ) : path === "approval.message" ? (
              <textarea id={id} rows={Math.min(6, Math.max(2, value.split("\n").length))} value={value} onChange={(e) => onSetting(path, e.target.value)} />
            ) : (
              <input id={id} value={value} spellCheck={false} inputMode={path === "wait.seconds" ? "decimal" : undefined} onChange={(e) => onSetting(path, e.target.value)} />
            )}
          </div>
        );
      })}
    </div>
  );
}

export function NewStepKind({ value, onChange }: { value: StepKind; onChange: (kind: StepKind) => void }) {
  return (
    <>
      <label htmlFor="new-step-kind">Kind of the new step</label>
      <select id="new-step-kind" value={value} onChange={(e) => onChange(e.target.value as StepKind)}>
        {KINDS.map((k) => (
          <option key={k} value={k}>
            {kindLabel(k)}
          </option>
        ))}
      </select>
    </>
  );
}
