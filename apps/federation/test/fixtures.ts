import { createHash } from "node:crypto"
import { NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Mnist from "../src/Mnist.ts"
import * as Weights from "../src/Weights.ts"

/** The real MNIST digits, loaded once per test file (Node's file system provided, as an app would). */
export const mnist = Effect.succeed(await Effect.runPromise(Mnist.load.pipe(Effect.provide(NodeServices.layer))))

/** A tiny deterministic generator for test fixtures (not the package's PRNG). */
export const lcg = (seed: number) => {
  let s = seed >>> 0
  return (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
}

/**
 * `count` synthetic images whose first two pixels encode the sample index
 * (so copies can be traced back), half the rest blank like MNIST background,
 * with labels cycling 0..9.
 */
export const synthetic = (count: number, seed = 7): Dataset.Dataset => {
  const next = lcg(seed)
  const images = new Float32Array(count * Dataset.pixels)
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const o = i * Dataset.pixels
    images[o] = (i % 256) / 255
    images[o + 1] = Math.floor(i / 256) / 255
    for (let j = 2; j < Dataset.pixels; j++) images[o + j] = next() < 0.5 ? 0 : next()
    labels[i] = i % Dataset.classes
  }
  return { images, labels, count }
}

/** The index encoded by `synthetic` in sample `i` of `data`. */
export const sampleId = (data: Dataset.Dataset, i: number): number =>
  Math.round(data.images[i * Dataset.pixels]! * 255) + 256 * Math.round(data.images[i * Dataset.pixels + 1]! * 255)

/** SHA-256 (hex) of parameters as their wire bytes (little-endian float32), the hash the server reports. */
export const sha256 = (params: Float32Array): string =>
  createHash("sha256").update(Weights.encode(params)).digest("hex")
