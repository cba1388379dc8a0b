// The run calls of issue 12: answer an approval, rerun from a step (docs/api.md).
import { request } from "./api";
import type { Run } from "./types";

const post = async (path: string, body: unknown): Promise<Run> => {
  const response = await request(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  return (await response.json()) as Run;
};

const stepPath = (runId: string, stepId: string) => `/v1/runs/${runId}/steps/${encodeURIComponent(stepId)}`;

export const stepsApi = {
  approve: (runId: string, stepId: string, fields: Record<string, unknown>) => post(`${stepPath(runId, stepId)}/approve`, { fields }),
  reject: (runId: string, stepId: string, reason: string) => post(`${stepPath(runId, stepId)}/reject`, { reason }),
  rerun: (runId: string, body: { from: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }) => post(`/v1/runs/${runId}/rerun`, body),
};
