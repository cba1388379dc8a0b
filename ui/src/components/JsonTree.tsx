// Structured outputs as a collapsible tree; values are text, never HTML.

export function JsonTree({ value, label }: { value: unknown; label?: string }) {
  return (
    <div className="json-tree" role="group" aria-label={label ?? "Structured output"}>
      <Node value={value} name={null} depth={0} />
    </div>
  );
}

function Node({ value, name, depth }: { value: unknown; name: string | null; depth: number }) {
  const key = name !== null ? <span className="json-key">{name}: </span> : null;
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
    const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
    return (
      <details open={depth < 2}>
        <summary>
          {key}
          <span className="json-meta">{summary}</span>
        </summary>
        <ul>
          {entries.map(([k, v]) => (
            <li key={k}>
              <Node value={v} name={k} depth={depth + 1} />
            </li>
          ))}
        </ul>
      </details>
    );
  }
  const kind = value === null ? "null" : typeof value;
  return (
    <div>
      {key}
      <span className={`json-${kind}`}>{kind === "string" ? JSON.stringify(value) : String(value)}</span>
    </div>
  );
}
