/**
 * @since 0.1.0
 */
export * as Campaign from "./Campaign.ts"
export * as Invariants from "./Invariants.ts"
export * as RunRecord from "./RunRecord.ts"
