/**
 * @since 0.1.0
 */
export * as Collector from "./Collector.ts"
export * as Diagnostics from "./Diagnostics.ts"
export * as DiagnosticsConfig from "./DiagnosticsConfig.ts"
export * as DiagnosticsEvent from "./DiagnosticsEvent.ts"
export * as DiagnosticsMessage from "./DiagnosticsMessage.ts"
export * as DiagnosticsMetrics from "./DiagnosticsMetrics.ts"
export * as DiagnosticsReport from "./DiagnosticsReport.ts"
export * as DiagnosticsSink from "./DiagnosticsSink.ts"
export * as JsonLinesSink from "./JsonLinesSink.ts"
export * as LogTail from "./LogTail.ts"
export * as MetricsSnapshot from "./MetricsSnapshot.ts"
export * as OtlpLogsSink from "./OtlpLogsSink.ts"
export * as ProcessReport from "./ProcessReport.ts"
export * as ResourceUsage from "./ResourceUsage.ts"
export * as TransportSink from "./TransportSink.ts"
