/**
 * @since 0.1.0
 */
export * as Auth from "./Auth.ts"
export * as Cli from "./Cli.ts"
export * as Dataset from "./Dataset.ts"
export * as EventLog from "./EventLog.ts"
export * as FedAvg from "./FedAvg.ts"
export * as Mnist from "./Mnist.ts"
export * as Model from "./Model.ts"
export * as Partition from "./Partition.ts"
export * as Protocol from "./Protocol.ts"
export * as Report from "./Report.ts"
export * as Settings from "./Settings.ts"
export * as Simulation from "./Simulation.ts"
export * as Softmax from "./Softmax.ts"
export * as Training from "./Training.ts"
export * as TwoNN from "./TwoNN.ts"
export * as Weights from "./Weights.ts"
