/**
 * @since 0.1.0
 */
export * as JobError from "./JobError.ts"
export * as JobEvent from "./JobEvent.ts"
export * as JobLifecycle from "./JobLifecycle.ts"
export * as JobMetrics from "./JobMetrics.ts"
export * as JobPhases from "./JobPhases.ts"
export * as JobSpec from "./JobSpec.ts"
export * as JobState from "./JobState.ts"
export * as JobStatus from "./JobStatus.ts"
export * as JobStore from "./JobStore.ts"
export * as JobWatch from "./JobWatch.ts"
export * as QuorumPolicy from "./QuorumPolicy.ts"
export * as SiteId from "./SiteId.ts"
