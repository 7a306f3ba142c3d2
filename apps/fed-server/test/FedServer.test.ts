import { assert, describe, it } from "@effect/vitest"
import { Auth, Protocol } from "@fedguard/app-kit"
import { Effect, Option, Redacted, Stream } from "effect"
import { secret, serverUp, settingsWith, withServer } from "./support/Harness.ts"

// Joins as `id` over the in-memory network and returns the server's answer.
const welcomeOf = (id: string) =>
  Effect.gen(function* () {
    const { network } = yield* serverUp
    const connection = yield* network.endpoint(id).connect("server:1")
    const next = connection.inbound.pipe(
      Stream.runHead,
      Effect.map(Option.getOrThrow),
      Effect.flatMap((item) =>
        item._tag === "Message" ? Protocol.fromEnvelope(item.envelope, "server") : Effect.die("a transfer"),
      ),
    )
    const challenge = yield* next
    if (challenge._tag !== "challenge") return yield* Effect.die(`expected a challenge, got ${challenge._tag}`)
    const proof = Auth.prove(Redacted.make(secret), challenge.nonce, id)
    yield* connection.send(Protocol.toEnvelope({ _tag: "join", id, proof, samples: 100 }))
    const answer = yield* next
    if (answer._tag !== "welcome") return yield* Effect.die(`expected a welcome, got ${answer._tag}`)
    return answer
  })

describe("FedServer's welcome", () => {
  const capped = settingsWith({ model: "mlp:64,32", localEpochs: "2", localSteps: "7" })
  it.effect("tells each client the model and the --local-steps cap on its SGD steps per round", () =>
    Effect.gen(function* () {
      const welcome = yield* welcomeOf("c1")
      assert.deepInclude(welcome, { model: "mlp:64,32", localEpochs: 2, localSteps: 7, batchSize: 10 })
    }).pipe(withServer(capped)),
  )

  const uncapped = settingsWith({ model: "2nn" })
  it.effect("sends no localSteps without --local-steps, so clients run every step of their epochs", () =>
    Effect.gen(function* () {
      const welcome = yield* welcomeOf("c1")
      assert.strictEqual(welcome.model, "2nn")
      assert.isFalse("localSteps" in welcome)
    }).pipe(withServer(uncapped)),
  )
})
