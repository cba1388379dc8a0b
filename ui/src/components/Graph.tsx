// The workflow's DAG, laid out left to right by dagre, drawn by React Flow. Each node is a
// real button naming the step and its status in words.
import { memo, useMemo } from "react";
import dagre from "@dagrejs/dagre";
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { statusIcon } from "../lib/format";
import type { ShownStatus } from "../lib/types";

export interface GraphStep {
  id: string;
  status?: ShownStatus;
  detail?: string;
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
      <span className="node-id">{step.id}</span>
      {status && (
        <span className="node-status">
          <span aria-hidden="true">{statusIcon(status)}</span> {status}
          {step.detail ? <span className="node-detail"> · {step.detail}</span> : null}
        </span>
      )}
    </>
  );
  return (
    <div className={`graph-node ${status ? `node-${status}` : ""} ${selected ? "node-selected" : ""}`}>
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

export function layout(steps: GraphStep[], deps: Map<string, string[]>): Map<string, { x: number; y: number }> {
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
  const nodes = useMemo<Node<StepNodeData>[]>(
    () =>
      props.steps.map((s) => ({
        id: s.id,
        type: "step",
        position: positions.get(s.id) ?? { x: 0, y: 0 },
        data: { step: s, selected: props.selected === s.id, onSelect: props.onSelect },
        draggable: false,
        selectable: false,
        focusable: false,
        width: WIDTH,
        height: HEIGHT,
      })),
    [props.steps, positions, props.selected, props.onSelect],
  );
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
  }, [props.steps, props.deps, positions]);
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
