import { NodeServices } from "@effect/platform-node"
import { SupervisorFile, SupervisorStore, WorkerHealth, WorkerSupervisor } from "@fedguard/supervisor"
import { Effect, Layer } from "effect"

// `file` is the parsed YAML/JSON: { workers: [...], monitoring: {...}, recovery: {...} }
export const superviseTrainers = (file: unknown) =>
  Effect.gen(function* () {
    const { workers, config } = yield* SupervisorFile.decode(file) // SchemaError names the key
    const supervisor = yield* WorkerSupervisor.make({ workers, config })
    for (const shard of ["shard-1", "shard-2", "shard-3"]) yield* supervisor.addTask(shard)
    return yield* supervisor.terminated // SupervisorEscalated | StoppedOnFailure
  }).pipe(
    Effect.scoped, // closing it stops every worker: SIGTERM, then SIGKILL after stopGrace
    Effect.provide(Layer.mergeAll(NodeServices.layer, WorkerHealth.layer, SupervisorStore.layerSqlite())),
  )
