import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import * as Model from "../src/Model.ts"

const decodeName = Schema.decodeUnknownResult(Model.Name)

// The reason a name is refused, through the Schema the CLI and the protocol decode with.
const refusal = (input: string): string => {
  const decoded = decodeName(input)
  return Result.isFailure(decoded) ? decoded.failure.message : `accepted ${input}`
}

describe("Model", () => {
  it.effect("decodes softmax, 2nn and mlp: with 1 to 64 hidden widths of 1 to 65,536 units", () =>
    Effect.sync(() => {
      const deep = `mlp:${Array.from({ length: 64 }, () => "8").join(",")}`
      for (const name of [
        "softmax",
        "2nn",
        "mlp:200,200",
        "mlp:1",
        "mlp:65536",
        "mlp:4096,3302",
        "mlp:10,20,30",
        deep,
      ]) {
        assert.isTrue(Result.isSuccess(decodeName(name)), name)
        assert.isTrue(Result.isSuccess(Model.parseName(name)), name)
      }
    }),
  )

  it.effect("refuses a malformed mlp: name with a message naming the problem and the hidden layer", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["mlp:0", 'invalid model name "mlp:0": hidden layer 1 has width 0; a width is an integer from 1 to 65,536'],
        ["mlp:", 'invalid model name "mlp:": no hidden-layer widths after mlp: (e.g. mlp:200,200)'],
        ["mlp:a,b", 'invalid model name "mlp:a,b": hidden layer 1 has width "a", not a positive integer (digits only)'],
        [
          "mlp:200,,200",
          'invalid model name "mlp:200,,200": hidden layer 2 has no width (an empty entry between commas)',
        ],
        ["mlp:200,", 'invalid model name "mlp:200,": hidden layer 2 has no width (an empty entry between commas)'],
        [
          "mlp:200, 200",
          'invalid model name "mlp:200, 200": hidden layer 2 has width " 200", not a positive integer (digits only)',
        ],
        ["mlp:-5", 'invalid model name "mlp:-5": hidden layer 1 has width "-5", not a positive integer (digits only)'],
        [
          "mlp:1e3",
          'invalid model name "mlp:1e3": hidden layer 1 has width "1e3", not a positive integer (digits only)',
        ],
        ["mlp:0200", 'invalid model name "mlp:0200": hidden layer 1 has width "0200" with a leading zero (write 200)'],
        [
          "mlp:65537",
          'invalid model name "mlp:65537": hidden layer 1 has width 65537; a width is an integer from 1 to 65,536',
        ],
        [
          "mlp:65536,65536",
          'invalid model name "mlp:65536,65536": 4,347,133,962 parameters (16.2 GiB of float32), more than the 536,870,912 (2 GiB) allowed',
        ],
        [`mlp:${Array.from({ length: 65 }, () => "8").join(",")}`, "65 hidden layers, more than the 64 allowed"],
      ]
      for (const [input, message] of cases) {
        assert.include(refusal(input), message, input)
        const parsed = Model.parseName(input)
        assert.isTrue(Result.isFailure(parsed), input)
        if (Result.isFailure(parsed)) {
          assert.strictEqual(parsed.failure._tag, "InvalidModelName")
          assert.strictEqual(parsed.failure.name, input)
          assert.include(parsed.failure.message, message)
        }
      }
    }),
  )

  it.effect("refuses a name that is not softmax, 2nn or mlp:, saying which names exist", () =>
    Effect.sync(() => {
      for (const input of ["foo", "", "MLP:200", "2NN", "mlp200", "cnn"]) {
        assert.strictEqual(
          refusal(input),
          `invalid model name "${input}": expected softmax, 2nn or mlp:W1,W2,… (hidden-layer widths, e.g. mlp:200,200)`,
        )
      }
      assert.isTrue(Result.isFailure(decodeName(200)))
    }),
  )

  it.effect("makes each named model with its name, architecture and parameter count", () =>
    Effect.sync(() => {
      const made = (["softmax", "2nn", "mlp:200,200", "mlp:100", "mlp:64,32,16"] as const).map((name) => {
        const model = Model.make(name)
        return [model.name, model.architecture, model.paramCount]
      })
      assert.deepStrictEqual(made, [
        ["softmax", "784-10 softmax regression", 7850],
        ["2nn", "784-200-200-10 ReLU", 199_210],
        ["mlp:200,200", "784-200-200-10 ReLU", 199_210],
        ["mlp:100", "784-100-10 ReLU", 79_510],
        ["mlp:64,32,16", "784-64-32-16-10 ReLU", 785 * 64 + 65 * 32 + 33 * 16 + 17 * 10],
      ])
    }),
  )

  it.effect("make throws InvalidModelName for a name that was never decoded, rather than build a broken model", () =>
    Effect.sync(() => {
      assert.throws(() => Model.make("mlp:0"), /invalid model name "mlp:0": hidden layer 1 has width 0/)
      assert.throws(() => Model.make("mlp:200,,200"), /hidden layer 2 has no width/)
    }),
  )
})
