/**
 * @since 0.1.0
 */
export * as FailureDetector from "./FailureDetector.ts"
export * as Heartbeat from "./Heartbeat.ts"
export * as HeartbeatConfig from "./HeartbeatConfig.ts"
export * as HeartbeatMetrics from "./HeartbeatMetrics.ts"
export * as HeartbeatSender from "./HeartbeatSender.ts"
export * as LivenessError from "./LivenessError.ts"
export * as LivenessEvent from "./LivenessEvent.ts"
export * as LivenessTracker from "./LivenessTracker.ts"
export * as PhiAccrual from "./PhiAccrual.ts"
export * as SenderEvent from "./SenderEvent.ts"
