// The README example's worker side, run in a real worker thread by TaskReadmeExample.test.ts:
// "training" adds the round number to every byte.
import { Effect } from "effect"
import { serveRounds } from "../examples/task-thread-training.ts"

Effect.runFork(serveRounds((model, meta) => model.map((b) => b + ((meta as { round: number }).round ?? 0))))
