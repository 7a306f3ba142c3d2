import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.ts"

// These tests start real supervisor and worker processes: one file at a time keeps the
// machine (2 cores) from being oversubscribed, which would stretch every bounded wait.
export default mergeConfig(shared, defineConfig({ test: { fileParallelism: false } }))
