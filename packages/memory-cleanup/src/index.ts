/**
 * @since 0.1.0
 */
export * as GarbageCollector from "./GarbageCollector.ts"
export * as MemoryCleanup from "./MemoryCleanup.ts"
export * as MemoryCleanupConfig from "./MemoryCleanupConfig.ts"
export * as MemoryCleanupEvent from "./MemoryCleanupEvent.ts"
export * as MemoryCleanupMetrics from "./MemoryCleanupMetrics.ts"
export * as MemoryReadings from "./MemoryReadings.ts"
