// One card per step: id, prompt, model, needs and condition. Every edit goes into the YAML
// through the Document API (lib/yamlEdit), so comments survive. Reorder by dragging a card
// or with its Move up / Move down buttons.
import { useEffect, useRef, useState } from "react";
import { addStep, moveStep, readSteps, removeStep, setStepField, setStepNeeds, setStepSetting, type CardField, type StepCard } from "../lib/yamlEdit";
import { kindLabel } from "../lib/kinds";
import type { StepKind } from "../lib/types";
import { KindSettings, NewStepKind } from "./KindSettings";

export function StepCards(props: { text: string; onChange: (text: string) => void; onShow: (index: number) => void; onError: (message: string) => void }) {
  const { steps, error } = readSteps(props.text);
  const [dragging, setDragging] = useState<number | null>(null);
  const [over, setOver] = useState<number | null>(null);
  const [focusAfter, setFocusAfter] = useState<{ index: number; button: string } | null>(null);
  const list = useRef<HTMLOListElement>(null);
  const [announce, setAnnounce] = useState("");
  const [newKind, setNewKind] = useState<StepKind>("prompt");

  useEffect(() => {
    if (!focusAfter || !list.current) return;
    const card = list.current.children[focusAfter.index] as HTMLElement | undefined;
    const target = card?.querySelector<HTMLButtonElement>(`button[data-action="${focusAfter.button}"]`);
    (target && !target.disabled ? target : card?.querySelector<HTMLButtonElement>("button[data-action]"))?.focus();
    setFocusAfter(null);
  }, [focusAfter]);

  const apply = (edit: () => string) => {
    try {
      props.onChange(edit());
    } catch (e) {
      props.onError(e instanceof Error ? e.message : String(e));
    }
  };

  const move = (from: number, to: number, button?: string) => {
    apply(() => moveStep(props.text, from, to));
    setAnnounce(`Moved ${steps[from].id} to position ${to + 1} of ${steps.length}.`);
    if (button) setFocusAfter({ index: to, button });
  };

  if (error) {
    return (
      <div className="cards-error" role="status">
        The step cards need readable YAML. Fix the problem in the editor: <em>{error}</em>
      </div>
    );
  }

  return (
    <div className="cards">
      <p className="visually-hidden" aria-live="polite">
        {announce}
      </p>
      <ol ref={list} className="card-list" aria-label="Steps">
        {steps.map((step, i) => (
          <li
            key={i}
            className={`step-card card ${dragging === i ? "dragging" : ""} ${over === i && dragging !== null && dragging !== i ? "drop-target" : ""}`}
            draggable
            data-step={step.id}
            onDragStart={(e) => {
              // Only drags that start on the handle move cards; text selection in fields still works.
              if (!(e.target as HTMLElement).closest?.(".drag-handle") && e.target !== e.currentTarget) {
                e.preventDefault();
                return;
              }
              setDragging(i);
              e.dataTransfer.effectAllowed = "move";
              e.dataTransfer.setData("text/plain", String(i));
            }}
            onDragOver={(e) => {
              if (dragging === null) return;
              e.preventDefault();
              e.dataTransfer.dropEffect = "move";
              setOver(i);
            }}
            onDragLeave={() => setOver((o) => (o === i ? null : o))}
            onDrop={(e) => {
              e.preventDefault();
              const from = dragging ?? Number(e.dataTransfer.getData("text/plain"));
              setDragging(null);
              setOver(null);
              if (Number.isInteger(from) && from !== i) move(from, i);
            }}
            onDragEnd={() => {
              setDragging(null);
              setOver(null);
            }}
          >
            <Card
              step={step}
              index={i}
              count={steps.length}
              others={steps.filter((_, j) => j !== i).map((s) => s.id)}
              onField={(field, value) => apply(() => setStepField(props.text, i, field, value))}
              onNeeds={(needs) => apply(() => setStepNeeds(props.text, i, needs))}
              onSetting={(path, value) => apply(() => setStepSetting(props.text, i, path, value))}
              onMove={(to, button) => move(i, to, button)}
              onRemove={() => {
                apply(() => removeStep(props.text, i));
                setAnnounce(`Removed ${step.id}.`);
              }}
              onShow={() => props.onShow(i)}
            />
          </li>
        ))}
      </ol>
      <div className="new-step-kind">
        <NewStepKind value={newKind} onChange={setNewKind} />
        <button
          type="button"
          onClick={() =>
            apply(() => {
              const { text, id } = addStep(props.text, newKind);
              setAnnounce(`Added ${id}.`);
              return text;
            })
          }
        >
          Add step
        </button>
      </div>
    </div>
  );
}

function Card(props: {
  step: StepCard;
  index: number;
  count: number;
  others: string[];
  onField: (field: CardField, value: string) => void;
  onNeeds: (needs: string[]) => void;
  onSetting: (path: string, value: string) => void;
  onMove: (to: number, button: string) => void;
  onRemove: () => void;
  onShow: () => void;
}) {
  const { step, index } = props;
  const base = `card-${index}`;
  const [needs, setNeeds] = useState(step.needs.join(", "));
  useEffect(() => setNeeds(step.needs.join(", ")), [step.needs.join(",")]); // eslint-disable-line react-hooks/exhaustive-deps
  const commitNeeds = () => {
    const list = needs.split(/[\s,]+/).filter(Boolean);
    if (list.join(",") !== step.needs.join(",")) props.onNeeds(list);
  };
  return (
    <fieldset className="card-body" aria-labelledby={`${base}-title`}>
      <div className="card-head">
        <span className="drag-handle" aria-hidden="true" title="Drag to reorder">
          ⠿
        </span>
        <h3 id={`${base}-title`} className="card-title">
          <span className="muted">{index + 1}.</span> {step.id || "(no id)"}
          {step.kind !== "prompt" && <span className="tag">{kindLabel(step.kind)}</span>}
        </h3>
        <div className="card-buttons">
          <button type="button" className="small" data-action="up" disabled={index === 0} onClick={() => props.onMove(index - 1, "up")}>
            Move up
          </button>
          <button type="button" className="small" data-action="down" disabled={index === props.count - 1} onClick={() => props.onMove(index + 1, "down")}>
            Move down
          </button>
          <button type="button" className="small" onClick={props.onShow}>
            Show in YAML
          </button>
          <button type="button" className="small danger-text" data-action="remove" onClick={props.onRemove}>
            Remove
          </button>
        </div>
      </div>
      <div className="field-row">
        <label htmlFor={`${base}-id`}>Id</label>
        <input id={`${base}-id`} value={step.id} spellCheck={false} onChange={(e) => props.onField("id", e.target.value)} />
      </div>
      {step.kind === "prompt" && (
        <div className="field-row">
          <label htmlFor={`${base}-prompt`}>Prompt</label>
          <textarea id={`${base}-prompt`} rows={Math.min(8, Math.max(2, step.prompt.split("\n").length))} value={step.prompt} onChange={(e) => props.onField("prompt", e.target.value)} />
        </div>
      )}
      <KindSettings base={base} kind={step.kind} settings={step.settings} onSetting={props.onSetting} />
      <div className="field-grid">
        {step.kind === "prompt" && (
          <div className="field-row">
            <label htmlFor={`${base}-model`}>Model</label>
            <input id={`${base}-model`} value={step.model} placeholder="workflow default" onChange={(e) => props.onField("model", e.target.value)} />
          </div>
        )}
        <div className="field-row">
          <label htmlFor={`${base}-needs`}>Needs</label>
          <input
            id={`${base}-needs`}
            value={needs}
            list={`${base}-ids`}
            placeholder={props.others.length ? `e.g. ${props.others[0]}` : "other step ids"}
            aria-describedby={`${base}-needs-hint`}
            onChange={(e) => setNeeds(e.target.value)}
            onBlur={commitNeeds}
            onKeyDown={(e) => e.key === "Enter" && (e.preventDefault(), commitNeeds())}
          />
          <datalist id={`${base}-ids`}>
            {props.others.map((o) => (
              <option key={o} value={o} />
            ))}
          </datalist>
          <span id={`${base}-needs-hint`} className="hint">
            Steps that must finish first, separated by commas
          </span>
        </div>
      </div>
      <div className="field-row">
        <label htmlFor={`${base}-when`}>Run only when</label>
        <input id={`${base}-when`} value={step.when} spellCheck={false} placeholder="always (e.g. steps.review.status == 'succeeded')" onChange={(e) => props.onField("when", e.target.value)} />
      </div>
    </fieldset>
  );
}
