/**
 * @since 0.1.0
 */
export * as NeighborEvent from "./NeighborEvent.ts"
export * as NeighborRegistry from "./NeighborRegistry.ts"
export * as Retry from "./Retry.ts"
export * as RetryEvent from "./RetryEvent.ts"
export * as RetryMetrics from "./RetryMetrics.ts"
export * as RetryPolicy from "./RetryPolicy.ts"
