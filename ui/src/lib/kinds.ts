// Step kinds as the Studio shows them (issue 12): a label per kind, what a `waiting` step
// waits for in words, the approval form's typed values, and which steps a rerun reuses.
import type { ApprovalField, ErrorItem, Step, StepKind, Waiting } from "./types";

const LABELS: Record<StepKind, string> = { prompt: "Prompt", http: "HTTP", approval: "Approval", wait: "Wait", workflow: "Workflow" };

export const KINDS = Object.keys(LABELS) as StepKind[];

/** "HTTP", "Approval", ...; an unknown kind (a newer server) shows as it is named. */
export function kindLabel(kind: string | null | undefined): string {
  if (!kind) return LABELS.prompt;
  return LABELS[kind as StepKind] ?? kind;
}

/** `14:05` today, `3 Dec, 14:05` another day (the viewer's clock and locale). */
export function clock(iso: string, now: Date = new Date(), locale?: string): string {
  const d = new Date(iso);
  const time = d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? time : `${d.toLocaleDateString(locale, { day: "numeric", month: "short" })}, ${time}`;
}

/** What a waiting step waits for: "waiting for approval", "waiting until 14:05",
 * "waiting for child run"; plain "waiting" when the server says nothing more. */
export function waitingText(waiting: Pick<Waiting, "kind" | "until"> | null | undefined, kind?: string, now?: Date, locale?: string): string {
  const what = waiting?.kind ?? kind;
  if (what === "approval") return "waiting for approval";
  if (what === "workflow") return "waiting for child run";
  if (waiting?.until) return `waiting until ${clock(waiting.until, now, locale)}`;
  return "waiting";
}

/** A step to show the approval form for: waiting, and what it waits for is known. */
export function isApprovalWaiting(step: Step): boolean {
  return step.status === "waiting" && step.waiting?.kind === "approval";
}

// ---- The approval form -------------------------------------------------------------

export type RawValue = string | boolean;

export function initialValue(field: ApprovalField): RawValue {
  return field.type === "boolean" ? false : "";
}

/** A field's typed value from what was typed: numbers and whole numbers checked, an
 * array one item per line (blank lines dropped). `missing` leaves the field out, so the
 * server's validation names it (it knows which fields are required). */
export function parseField(field: ApprovalField, raw: RawValue): { value: unknown } | { error: string } | { missing: true } {
  if (field.type === "boolean") return { value: raw === true };
  const text = String(raw);
  if (field.type === "array") return { value: text.split("\n").map((l) => l.trim()).filter(Boolean) };
  if (field.type === "string") return { value: text };
  const t = text.trim();
  if (t === "") return { missing: true };
  if (field.type === "integer") return /^[-+]?\d+$/.test(t) ? { value: Number(t) } : { error: "must be a whole number" };
  const n = Number(t);
  return Number.isFinite(n) ? { value: n } : { error: "must be a number" };
}

export function formValues(fields: ApprovalField[], raw: Record<string, RawValue>): { values: Record<string, unknown>; errors: Record<string, string> } {
  const values: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const r = parseField(f, raw[f.name] ?? initialValue(f));
    if ("error" in r) errors[f.name] = r.error;
    else if ("value" in r) values[f.name] = r.value;
  }
  return { values, errors };
}

/** A 422 problem's errors by the name they concern: `fields.score`, `body.fields.score`
 * or `score` all land on `score`; `inputs.topic` on `inputs.topic` when `prefix` is
 * "inputs"; anything else under "" (shown above the form). */
export function errorsByField(items: ErrorItem[], names: string[], prefix = "fields"): Record<string, string> {
  const out: Record<string, string> = {};
  const known = new Set(names);
  for (const item of items) {
    const parts = item.path.split(/[.[\]]+/).filter(Boolean);
    while (parts.length && (parts[0] === "body" || parts[0] === prefix)) parts.shift();
    const key = parts[0] && known.has(parts[0]) ? parts[0] : "";
    out[key] = out[key] ? `${out[key]}; ${item.message}` : item.message;
  }
  return out;
}

// ---- Rerun from a step ---------------------------------------------------------------

/** `from` and every step that depends on it, directly or not: what a rerun runs again. */
export function downstream(deps: Map<string, string[]>, from: string): Set<string> {
  const dependants = new Map<string, string[]>();
  deps.forEach((needs, id) => needs.forEach((n) => dependants.set(n, [...(dependants.get(n) ?? []), id])));
  const out = new Set<string>([from]);
  const queue = [from];
  while (queue.length) for (const next of dependants.get(queue.pop()!) ?? []) if (!out.has(next)) out.add(next), queue.push(next);
  return out;
}

/** A for_each item's id (`draft[2]`) belongs to its step (`draft`). */
export const baseId = (id: string): string => id.replace(/\[\d+\]$/, "");

/** The steps before `from` whose output a rerun may replace: not `from` nor downstream
 * of it (those run again), not a for_each item (its step's list is edited as a whole). A
 * failed one edited by hand counts as succeeded with that output. */
export function reusable(steps: Step[], deps: Map<string, string[]>, from: string): Step[] {
  const again = downstream(deps, from);
  return steps.filter((s) => !again.has(baseId(s.id)) && !/\[\d+\]$/.test(s.id));
}

/** The text an output is edited as: the structured answer as JSON, or the answer. */
export function outputText(step: Step): string {
  if (step.outputs !== null && step.outputs !== undefined) return JSON.stringify(step.outputs, null, 2);
  return step.output ?? "";
}

export function parseOutput(step: Step, text: string): { value: unknown } | { error: string } {
  if (step.outputs === null || step.outputs === undefined) return { value: text };
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value) !== Array.isArray(step.outputs))
      return { error: Array.isArray(step.outputs) ? "must be a JSON list" : 'must be a JSON object ({"field": value})' };
    return { value };
  } catch (e) {
    return { error: `is not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** How a run input is edited: by the type of its recorded value. */
export type InputKind = "string" | "number" | "boolean" | "json";

export function inputKind(value: unknown): InputKind {
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  if (typeof value === "string") return "string";
  return "json";
}

export function inputText(value: unknown): RawValue {
  const kind = inputKind(value);
  if (kind === "boolean") return value as boolean;
  if (kind === "json") return JSON.stringify(value, null, 2);
  return String(value);
}

export function parseInput(kind: InputKind, raw: RawValue): { value: unknown } | { error: string } {
  if (kind === "boolean") return { value: raw === true };
  const text = String(raw);
  if (kind === "string") return { value: text };
  if (kind === "number") {
    const n = Number(text.trim());
    return text.trim() !== "" && Number.isFinite(n) ? { value: n } : { error: "must be a number" };
  }
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: "must be JSON" };
  }
}

/** The kind of a step as written in the YAML (the key it has: `http:`, `approval:`, ...). */
export function specKind(step: object): StepKind {
  return KINDS.find((k) => k !== "prompt" && k in step) ?? "prompt";
}
