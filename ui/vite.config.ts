import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The build goes into the Python package (git-ignored), served by the API at `/`.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../shared/orchestrate/studio_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run dev` against a local `orchestrate serve` (default port).
    proxy: { "/v1": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    // Published as ESM with extension-less imports: let Vite resolve them.
    server: { deps: { inline: [/codemirror-json-schema/] } },
  },
});
