import { defineConfig } from "vitest/config"

/**
 * The one vitest configuration every package and app extends. Each run also
 * writes `test-results.json`, which `scripts/test-summary.mjs` adds up into
 * the closing `N passed, N failed` line that CI reads.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
