import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.ts"

// The short campaign starts real server and client processes: one file at a time keeps the
// machine from being oversubscribed (2 cores here), which would stretch every timeout. Inside
// test/Campaign.test.ts two scenarios run side by side (`describe.concurrent`).
export default mergeConfig(shared, defineConfig({ test: { fileParallelism: false, maxConcurrency: 2 } }))
