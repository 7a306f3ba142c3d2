import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.ts"

// Each simulation keeps a core busy for seconds: one file at a time on this 2-core machine.
export default mergeConfig(shared, defineConfig({ test: { fileParallelism: false, testTimeout: 60_000 } }))
