// Entry point of a worker thread in the real-process tests: options arrive as `workerData`.
import { workerData } from "node:worker_threads"
import { Effect } from "effect"
import * as TaskPipe from "../src/TaskPipe.ts"
import { serve } from "./task-trainer.ts"

Effect.runFork(serve(TaskPipe.layerParentPort, workerData ?? {}))
