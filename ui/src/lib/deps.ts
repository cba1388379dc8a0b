// A workflow's dependency graph as the engine builds it (shared/orchestrate/spec/plan.py):
// `needs`, step inputs with a step `source`, and references in prompts and `when`.
// A workflow in which no step refers to another runs as a conversation: in order.

export interface SpecStep {
  id: string;
  needs?: string[];
  prompt?: string | null;
  when?: string | null;
  inputs?: { name: string; source?: string }[];
  for_each?: string | null;
  // The other kinds: every string in them is a template (url, headers, body, message, ...).
  http?: unknown;
  approval?: unknown;
  wait?: unknown;
  workflow?: unknown;
}

function strings(value: unknown, into: string[] = []): string[] {
  if (typeof value === "string") into.push(value);
  else if (Array.isArray(value)) value.forEach((v) => strings(v, into));
  else if (value && typeof value === "object") Object.values(value).forEach((v) => strings(v, into));
  return into;
}

const BLOCKS = /\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g;

function referenced(text: string, ids: Set<string>, expression: boolean): Set<string> {
  const found = new Set<string>();
  const scan = (code: string) => {
    for (const m of code.matchAll(/steps\s*\.\s*([A-Za-z_][\w-]*)|steps\s*\[\s*['"]([^'"]+)['"]\s*\]/g)) {
      const id = m[1] ?? m[2];
      if (ids.has(id)) found.add(id);
    }
    // The prototype's bare `{{ step_id }}`.
    for (const m of code.matchAll(/(?<![.\w])([A-Za-z_]\w*)(?![\w(])/g)) if (ids.has(m[1])) found.add(m[1]);
  };
  if (expression) scan(text);
  else for (const m of text.matchAll(BLOCKS)) scan(m[1] ?? m[2] ?? "");
  return found;
}

export function dependencies(steps: SpecStep[], conversation?: boolean | null): Map<string, string[]> {
  const ids = new Set(steps.map((s) => s.id));
  const deps = new Map<string, string[]>();
  let refers = false;
  for (const step of steps) {
    const need = new Set<string>((step.needs ?? []).filter((n) => ids.has(n)));
    for (const input of step.inputs ?? []) if (input.source && ids.has(input.source)) need.add(input.source);
    const templates = [step.prompt, step.for_each, ...strings([step.http, step.approval, step.wait, step.workflow])];
    for (const t of templates) if (typeof t === "string") referenced(t, ids, false).forEach((id) => need.add(id));
    if (step.when) referenced(step.when, ids, true).forEach((id) => need.add(id));
    need.delete(step.id);
    if (need.size) refers = true;
    deps.set(step.id, [...need]);
  }
  const chained = conversation ?? (!refers && steps.length > 1);
  if (chained) steps.forEach((s, i) => deps.set(s.id, i ? [steps[i - 1].id] : []));
  return deps;
}
