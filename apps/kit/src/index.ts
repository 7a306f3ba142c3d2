/**
 * @since 0.2.0
 */
export * as Auth from "./Auth.ts"
export * as Cli from "./Cli.ts"
export * as EventLog from "./EventLog.ts"
export * as Memory from "./Memory.ts"
export * as ParentWatch from "./ParentWatch.ts"
export * as Progress from "./Progress.ts"
export * as Protocol from "./Protocol.ts"
export * as Report from "./Report.ts"
export * as ReportHtml from "./ReportHtml.ts"
export * as RunView from "./RunView.ts"
export * as Settings from "./Settings.ts"
export * as Telemetry from "./Telemetry.ts"
