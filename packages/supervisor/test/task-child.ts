// Entry point of a child process in the real-process tests: options arrive as JSON in argv[2].
import { Effect } from "effect"
import * as TaskPipe from "../src/TaskPipe.ts"
import { serve } from "./task-trainer.ts"

Effect.runFork(serve(TaskPipe.layerProcessChannel, JSON.parse(process.argv[2] ?? "{}")))
