// Step-card edits applied to the workflow's YAML through the `yaml` Document API, so the
// user's comments, quoting and blank lines survive every edit.
import { isMap, isScalar, isSeq, parseDocument, Scalar, YAMLMap, YAMLSeq, type Document } from "yaml";
import { specKind } from "./kinds";
import type { StepKind } from "./types";

export interface StepCard {
  id: string;
  prompt: string;
  model: string;
  needs: string[];
  when: string;
  /** A step of another kind (http, approval, ...): only some fields are editable. */
  kind: string;
  /** The kind's own settings the card edits, by path (`http.url`, `wait.seconds`, ...). */
  settings: Record<string, string>;
}

/** What a card edits of each kind's settings (the rest stays as written in the YAML). */
export const KIND_SETTINGS: Record<string, string[]> = {
  http: ["http.method", "http.url"],
  approval: ["approval.message"],
  wait: ["wait.seconds", "wait.until"],
  workflow: ["workflow.name", "workflow.id"],
};

/** The settings written as numbers. */
const NUMERIC = new Set(["wait.seconds"]);

export type CardField = "id" | "prompt" | "model" | "when";

const TO_STRING = { lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false } as const;

function load(text: string): Document.Parsed {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length) throw new Error(doc.errors[0].message);
  return doc;
}

function stepsOf(doc: Document.Parsed): YAMLSeq {
  const steps = doc.get("steps", true);
  if (!isSeq(steps)) throw new Error("the workflow has no `steps:` list");
  return steps as YAMLSeq;
}

function stepMap(doc: Document.Parsed, index: number): YAMLMap {
  const item = stepsOf(doc).items[index];
  if (!isMap(item)) throw new Error(`steps[${index}] is not a mapping`);
  return item as YAMLMap;
}

const str = (v: unknown): string => (v === null || v === undefined ? "" : String(v));

/** The steps as cards, or an error message when the text cannot be read. */
export function readSteps(text: string): { steps: StepCard[]; error: string | null } {
  try {
    const doc = load(text);
    const steps = stepsOf(doc).items.map((item, i): StepCard => {
      if (!isMap(item)) return { id: `steps[${i}]`, prompt: "", model: "", needs: [], when: "", kind: "invalid", settings: {} };
      const js = (item as YAMLMap).toJSON() as Record<string, unknown>;
      const needs = Array.isArray(js.needs) ? js.needs.map(str) : js.needs ? [str(js.needs)] : [];
      const kind = specKind(js);
      const settings: Record<string, string> = {};
      for (const path of KIND_SETTINGS[kind] ?? []) {
        const [k, field] = path.split(".");
        const block = js[k];
        settings[path] = block && typeof block === "object" && !Array.isArray(block) ? str((block as Record<string, unknown>)[field]) : "";
      }
      return { id: str(js.id), prompt: str(js.prompt), model: str(js.model), needs, when: str(js.when), kind, settings };
    });
    return { steps, error: null };
  } catch (error) {
    return { steps: [], error: error instanceof Error ? error.message : String(error) };
  }
}

/** Set (or, when empty, remove) one field of one step. */
export function setStepField(text: string, index: number, field: CardField, value: string): string {
  const doc = load(text);
  const map = stepMap(doc, index);
  if (value === "" && field !== "id" && field !== "prompt") {
    map.delete(field);
    return doc.toString(TO_STRING);
  }
  const prev = map.get(field, true);
  if (isScalar(prev)) {
    const scalar = prev as Scalar;
    scalar.value = value;
    // A multi-line value reads best as a block; a block emptied to one line stays one.
    if (value.includes("\n") && scalar.type !== Scalar.BLOCK_LITERAL) scalar.type = Scalar.BLOCK_LITERAL;
  } else {
    const node = doc.createNode(value) as Scalar;
    if (value.includes("\n")) node.type = Scalar.BLOCK_LITERAL;
    map.set(field, node);
  }
  return doc.toString(TO_STRING);
}

/** Set (or, when empty, remove) one of a kind's settings, e.g. `http.url`; a number
 * setting that does not read as a number is kept as typed (the validator names it). */
export function setStepSetting(text: string, index: number, path: string, value: string): string {
  const doc = load(text);
  const map = stepMap(doc, index);
  const keys = path.split(".");
  if (value === "") {
    if (map.hasIn(keys)) map.deleteIn(keys);
    return doc.toString(TO_STRING);
  }
  const typed = NUMERIC.has(path) && value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
  const prev = map.getIn(keys, true);
  if (isScalar(prev)) {
    const scalar = prev as Scalar;
    scalar.value = typed;
    if (typeof typed === "string" && typed.includes("\n") && scalar.type !== Scalar.BLOCK_LITERAL) scalar.type = Scalar.BLOCK_LITERAL;
  } else {
    const node = doc.createNode(typed) as Scalar;
    if (typeof typed === "string" && typed.includes("\n")) node.type = Scalar.BLOCK_LITERAL;
    if (!isMap(map.get(keys[0], true))) map.set(keys[0], doc.createNode({}));
    map.setIn(keys, node);
  }
  return doc.toString(TO_STRING);
}

/** Replace a step's `needs:` (removed when empty), keeping a flow list a flow list. */
export function setStepNeeds(text: string, index: number, needs: string[]): string {
  const doc = load(text);
  const map = stepMap(doc, index);
  if (needs.length === 0) {
    map.delete("needs");
    return doc.toString(TO_STRING);
  }
  const prev = map.get("needs", true);
  const node = doc.createNode(needs) as YAMLSeq;
  node.flow = isSeq(prev) ? Boolean((prev as YAMLSeq).flow) : true;
  if (isSeq(prev)) {
    node.comment = (prev as YAMLSeq).comment;
    node.commentBefore = (prev as YAMLSeq).commentBefore;
  }
  map.set("needs", node);
  return doc.toString(TO_STRING);
}

function uniqueId(existing: Set<string>): string {
  for (let n = existing.size + 1; ; n++) {
    const id = `step_${n}`;
    if (!existing.has(id)) return id;
  }
}

/** A new step of each kind: the least that validates, with a hint of what goes where. */
const NEW_STEP: Record<StepKind, (id: string) => Record<string, unknown>> = {
  prompt: (id) => ({ id, prompt: "Write your prompt here. Use {{ inputs.name }} or {{ steps.other.output }}." }),
  http: (id) => ({ id, http: { method: "GET", url: "https://api.example.com/items/{{ inputs.name }}" } }),
  approval: (id) => ({ id, approval: { message: "Please review before the run goes on.", fields: [{ name: "note", type: "string" }] } }),
  wait: (id) => ({ id, wait: { seconds: 60 } }),
  workflow: (id) => ({ id, workflow: { name: "Another workflow", inputs: {} } }),
};

/** Append a new step (a prompt unless told); returns the text and the new step's id. */
export function addStep(text: string, kind: StepKind = "prompt"): { text: string; id: string } {
  const doc = load(text);
  let seq = doc.get("steps", true);
  if (!isSeq(seq)) {
    seq = doc.createNode([]) as YAMLSeq;
    doc.set("steps", seq);
  }
  const items = (seq as YAMLSeq).items;
  const ids = new Set(items.filter(isMap).map((m) => str((m as YAMLMap).get("id"))));
  const id = uniqueId(ids);
  const node = doc.createNode(NEW_STEP[kind](id)) as YAMLMap;
  if (items.some((item, i) => i > 0 && (item as YAMLMap).spaceBefore)) node.spaceBefore = true;
  items.push(node);
  return { text: doc.toString(TO_STRING), id };
}

export function removeStep(text: string, index: number): string {
  const doc = load(text);
  const seq = stepsOf(doc);
  if (index < 0 || index >= seq.items.length) return text;
  const [removed] = seq.items.splice(index, 1);
  // A comment written above the first step belongs to the list; keep it on the new first.
  if (index === 0 && seq.items[0] && isMap(removed) && (removed as YAMLMap).commentBefore && !(seq.items[0] as YAMLMap).commentBefore) {
    (seq.items[0] as YAMLMap).commentBefore = (removed as YAMLMap).commentBefore;
  }
  return doc.toString(TO_STRING);
}

/** Move a step from one position to another; its comments travel with it. */
export function moveStep(text: string, from: number, to: number): string {
  const doc = load(text);
  const seq = stepsOf(doc);
  const n = seq.items.length;
  if (from === to || from < 0 || to < 0 || from >= n || to >= n) return text;
  const spaced = seq.items.some((item, i) => i > 0 && (item as YAMLMap).spaceBefore);
  const [item] = seq.items.splice(from, 1);
  seq.items.splice(to, 0, item);
  if (spaced) seq.items.forEach((it, i) => ((it as YAMLMap).spaceBefore = i > 0));
  return doc.toString(TO_STRING);
}

/** Where a step starts in the text (1-based line), to jump from a card to the editor. */
export function stepLine(text: string, index: number): number | null {
  try {
    const doc = parseDocument(text);
    const item = stepsOf(doc).items[index] as YAMLMap | undefined;
    const start = item?.range?.[0];
    if (start === undefined) return null;
    return text.slice(0, start).split("\n").length;
  } catch {
    return null;
  }
}

/** A fresh, valid workflow to start from. */
export const BLANK_WORKFLOW = `# A new workflow. Each step sends its prompt to a model; later steps can use earlier answers.
name: My workflow
description: What this workflow does
inputs:
  topic: {type: string, description: What to write about, default: tea}
steps:
  - id: draft
    prompt: "Write a short paragraph about {{ inputs.topic }}."

  - id: improve
    prompt: "Improve this paragraph: {{ steps.draft.output }}"
`;
