/**
 * @since 0.1.0
 */
export * as Dataset from "./Dataset.ts"
export * as FedAvg from "./FedAvg.ts"
export * as Mlp from "./Mlp.ts"
export * as Mnist from "./Mnist.ts"
export * as Model from "./Model.ts"
export * as Partition from "./Partition.ts"
export * as Simulation from "./Simulation.ts"
export * as Softmax from "./Softmax.ts"
export * as Training from "./Training.ts"
export * as TwoNN from "./TwoNN.ts"
export * as Weights from "./Weights.ts"
export * as Workload from "./Workload.ts"
