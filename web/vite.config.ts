import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by the query API at `/` (same origin as `/api/v1`); `npm run dev`
// proxies the API to a local stack.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 400 },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { environment: "jsdom", include: ["src/**/*.test.ts"] },
});
