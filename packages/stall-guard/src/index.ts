/**
 * @since 0.1.0
 */
export * as AckProgressWatchdog from "./AckProgressWatchdog.ts"
export * as StallEvent from "./StallEvent.ts"
export * as StallGuardConfig from "./StallGuardConfig.ts"
export * as StallMetrics from "./StallMetrics.ts"
export * as StallMonitor from "./StallMonitor.ts"
export * as TimeoutBudget from "./TimeoutBudget.ts"
export * as TransferTracker from "./TransferTracker.ts"
