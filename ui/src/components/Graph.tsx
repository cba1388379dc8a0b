// The workflow's DAG, laid out left to right by dagre, drawn by React Flow. Each node is a
// real button naming the step and its status in words.
import { memo, useMemo, useRef } from "react";
import dagre from "@dagrejs/dagre";
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { statusIcon } from "../lib/format";
import { kindLabel } from "../lib/kinds";
import "../steps.css";
import type { ShownStatus } from "../lib/types";

export interface GraphStep {
  id: string;
  status?: ShownStatus;
  detail?: string;
  /** The step's kind; prompt steps (the default) carry no label. */
  kind?: string;
  /** Words in place of the status (a waiting step's "waiting for approval"). */
  label?: string;
  reused?: boolean;
}

interface StepNodeData extends Record<string, unknown> {
  step: GraphStep;
  selected: boolean;
  onSelect?: (id: string) => void;
}

const WIDTH = 190;
const HEIGHT = 62;

const StepNode = memo(function StepNode({ data }: NodeProps<Node<StepNodeData>>) {
  const { step, selected, onSelect } = data;
  const status = step.status;
  const body = (
    <>
      <span className="node-top">
        <span className="node-id">{step.id}</span>
        {step.kind && step.kind !== "prompt" && <span className="node-kind">{kindLabel(step.kind)}</span>}
      </span>
      {status && (
        <span className="node-status">
          <span aria-hidden="true">{statusIcon(status)}</span> {step.label ?? status}
          {step.detail ? <span className="node-detail"> · {step.detail}</span> : null}
        </span>
      )}
    </>
  );
  return (
    <div className={`graph-node ${status ? `node-${status}` : ""} ${step.reused ? "node-reused" : ""} ${selected ? "node-selected" : ""}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      {onSelect ? (
        <button type="button" className="node-button nodrag" onClick={() => onSelect(step.id)} aria-pressed={selected}>
          {body}
        </button>
      ) : (
        <div className="node-button">{body}</div>
      )}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { step: StepNode };

const DAGRE_LIMIT = 150; // dagre's layout grows faster than linearly: ~3 s for a 500-step chain

/** Positions left to right by dependency depth: dagre for graphs a person reads node by
 * node, a linear-time layered layout (rank = longest path from a root) above that. */
export function layout(steps: GraphStep[], deps: Map<string, string[]>): Map<string, { x: number; y: number }> {
  return steps.length > DAGRE_LIMIT ? layered(steps, deps) : dagreLayout(steps, deps);
}

export function layered(steps: GraphStep[], deps: Map<string, string[]>): Map<string, { x: number; y: number }> {
  const ids = new Set(steps.map((s) => s.id));
  const rank = new Map<string, number>();
  const visiting = new Set<string>();
  const rankOf = (id: string): number => {
    const known = rank.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle (the validator reports it): break it here
    visiting.add(id);
    let r = 0;
    for (const d of deps.get(id) ?? []) if (ids.has(d)) r = Math.max(r, rankOf(d) + 1);
    visiting.delete(id);
    rank.set(id, r);
    return r;
  };
  // Deep chains would overflow the stack with recursion: settle ranks in file order first.
  for (const s of steps) {
    const ready = (deps.get(s.id) ?? []).every((d) => !ids.has(d) || rank.has(d));
    if (ready) rankOf(s.id);
  }
  steps.forEach((s) => rankOf(s.id));
  // Long chains wrap into bands of columns so the graph stays roughly square.
  const maxRank = Math.max(0, ...rank.values());
  const perRow = Math.max(8, Math.ceil(Math.sqrt(maxRank + 1) * 2));
  const slots = new Map<string, number>();
  const used = new Map<number, number>();
  for (const s of steps) {
    const r = rank.get(s.id) ?? 0;
    slots.set(s.id, used.get(r) ?? 0);
    used.set(r, (used.get(r) ?? 0) + 1);
  }
  const bandRows: number[] = [];
  used.forEach((n, r) => {
    const band = Math.floor(r / perRow);
    bandRows[band] = Math.max(bandRows[band] ?? 0, n);
  });
  const bandTop: number[] = [];
  for (let b = 0, y = 0; b < bandRows.length; b++) {
    bandTop[b] = y;
    y += ((bandRows[b] ?? 0) + 1) * (HEIGHT + 24);
  }
  const out = new Map<string, { x: number; y: number }>();
  for (const s of steps) {
    const r = rank.get(s.id) ?? 0;
    out.set(s.id, { x: (r % perRow) * (WIDTH + 60), y: bandTop[Math.floor(r / perRow)] + (slots.get(s.id) ?? 0) * (HEIGHT + 24) });
  }
  return out;
}

function dagreLayout(steps: GraphStep[], deps: Map<string, string[]>): Map<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 60, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of steps) g.setNode(s.id, { width: WIDTH, height: HEIGHT });
  for (const s of steps) for (const d of deps.get(s.id) ?? []) if (g.hasNode(d)) g.setEdge(d, s.id);
  dagre.layout(g);
  const out = new Map<string, { x: number; y: number }>();
  for (const s of steps) {
    const n = g.node(s.id);
    out.set(s.id, { x: n.x - WIDTH / 2, y: n.y - HEIGHT / 2 });
  }
  return out;
}

export default function Graph(props: {
  steps: GraphStep[];
  deps: Map<string, string[]>;
  selected?: string | null;
  onSelect?: (id: string) => void;
  label: string;
}) {
  const ids = props.steps.map((s) => s.id).join("\n");
  const depKey = [...props.deps.entries()].map(([k, v]) => `${k}:${v.join(",")}`).join(";");
  // Layout depends only on the shape of the graph, not on statuses.
  const positions = useMemo(() => layout(props.steps, props.deps), [ids, depKey]); // eslint-disable-line react-hooks/exhaustive-deps
  // Node objects are reused while a step's look is unchanged, so a status change
  // re-renders one node, not all of them (a 500-step run stays responsive).
  const cache = useRef(new Map<string, { key: string; node: Node<StepNodeData> }>());
  const nodes = useMemo<Node<StepNodeData>[]>(() => {
    const next = new Map<string, { key: string; node: Node<StepNodeData> }>();
    const out = props.steps.map((s) => {
      const position = positions.get(s.id) ?? { x: 0, y: 0 };
      const selected = props.selected === s.id;
      const key = `${s.status}|${s.detail}|${s.kind}|${s.label}|${s.reused}|${selected}|${position.x},${position.y}`;
      const old = cache.current.get(s.id);
      const node =
        old && old.key === key && old.node.data.onSelect === props.onSelect
          ? old.node
          : {
              id: s.id,
              type: "step",
              position,
              data: { step: s, selected, onSelect: props.onSelect },
              draggable: false,
              selectable: false,
              focusable: false,
              width: WIDTH,
              height: HEIGHT,
            };
      next.set(s.id, { key, node });
      return node;
    });
    cache.current = next;
    return out;
  }, [props.steps, positions, props.selected, props.onSelect]);
  const edgeKey = props.steps.map((s) => (s.status === "running" ? "r" : s.status === "succeeded" ? "s" : "-")).join("");
  const edges = useMemo<Edge[]>(() => {
    const statusOf = new Map(props.steps.map((s) => [s.id, s.status]));
    const out: Edge[] = [];
    for (const s of props.steps)
      for (const d of props.deps.get(s.id) ?? [])
        if (positions.has(d))
          out.push({
            id: `${d}->${s.id}`,
            source: d,
            target: s.id,
            animated: statusOf.get(s.id) === "running",
            focusable: false,
            className: statusOf.get(d) === "succeeded" ? "edge-done" : undefined,
          });
    return out;
  }, [edgeKey, positions, depKey]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <div className="graph" role="region" aria-label={props.label}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ padding: 0.15, maxZoom: 1.1 }}
        minZoom={0.1}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        onlyRenderVisibleElements={props.steps.length > 60}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={20} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
