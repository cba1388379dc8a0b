import type { ShownStatus, RunStatus } from "./types";

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function tokens(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : n.toLocaleString();
}

const ICONS: Record<string, string> = {
  pending: "○",
  queued: "◌",
  running: "◐",
  waiting: "◷",
  paused: "⏸",
  retrying: "↻",
  succeeded: "✓",
  failed: "✕",
  skipped: "↷",
  cancelled: "⊘",
};

export function statusIcon(status: ShownStatus | RunStatus): string {
  return ICONS[status] ?? "•";
}
