/**
 * Head-of-line blocking under a stalled receiver, over real TCP on 127.0.0.1
 * (`@fedguard/transport-node` with its defaults: 256 KiB chunks, 4 MiB
 * window).
 *
 * One connection carries a bulk byte stream to a receiver that consumes
 * 10 MiB and then stops pulling (it keeps reading its socket: the
 * application stalled, not the kernel), while the client sends a heartbeat
 * (`ping`, answered with `pong` by the server) every 10 ms for 5 s on the same
 * connection. The bulk send runs under `AckProgressWatchdog.watch` with a
 * short ackProgressTimeout of 1 s (checked every 50 ms) so the stall is
 * detected within the run; after each `AckStalled` the client starts a new
 * stream (as a retrying sender would), which fills its window into the still
 * stalled receiver, so bulk bursts keep coming during the whole measurement.
 *
 * Baseline in the same run, first: the same 5 s of heartbeats on an idle
 * connection. Prints round-trip p50/p99/max of both, their ratio, and the
 * time from the stall (the receiver's last pull) to the first `AckStalled`.
 * The last line is one JSON object.
 *
 *   node benchmarks/dist/hol.js
 */
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import { AckProgressWatchdog } from "@fedguard/stall-guard"
import { type Connection, Envelope, Transport } from "@fedguard/transport"
import { NodeTransport } from "@fedguard/transport-node"
import { Deferred, Effect, Fiber, References, Stream } from "effect"

const MiB = 1024 * 1024
const STALL_AFTER = 10 * MiB
const BEAT_EVERY_MS = 10
const BEATS_FOR_MS = 5_000
const ACK_PROGRESS_TIMEOUT = "1 second"
const TARGET_P99_MS = 20

const source = new Uint8Array(MiB).map((_, i) => (i * 31 + 7) & 0xff)
const bulk = Stream.range(0, 255).pipe(Stream.map(() => source)) // 256 MiB, never finished

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

interface Summary {
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly count: number
  readonly lost: number
}

const summarize = (rtts: ReadonlyArray<number>, sent: number): Summary => {
  const sorted = [...rtts].sort((a, b) => a - b)
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1)!,
    count: sorted.length,
    lost: sent - sorted.length,
  }
}

const fmt = (ms: number) => ms.toFixed(2)

// The server: answers pings at once; consumes incoming byte streams up to STALL_AFTER bytes in
// total, then stops pulling for good (resolving `stalled` with the time of its last pull).
const serve = (connection: Connection.Connection, stalled: Deferred.Deferred<number>) =>
  Effect.gen(function* () {
    let consumed = 0
    yield* connection.inbound.pipe(
      Stream.runForEach((item) => {
        if (item._tag === "Message") {
          return item.envelope.tag === "ping" ? connection.send(Envelope.make("pong", item.envelope.body)) : Effect.void
        }
        return Effect.forkScoped(
          item.transfer.bytes.pipe(
            Stream.runForEach((chunk) =>
              Effect.gen(function* () {
                consumed += chunk.byteLength
                if (consumed < STALL_AFTER) return
                yield* Deferred.succeed(stalled, performance.now())
                yield* Effect.never
              }),
            ),
            Effect.ignore,
          ),
        )
      }),
      Effect.ignore,
    )
  })

// Heartbeats every 10 ms for 5 s on `client`; returns the round trips (ms) and the number sent.
const beats = (client: Connection.Connection, pongs: Map<number, number>, rtts: Array<number>) =>
  Effect.gen(function* () {
    rtts.length = 0
    pongs.clear()
    const start = performance.now()
    let seq = 0
    while (performance.now() - start < BEATS_FOR_MS) {
      seq++
      pongs.set(seq, performance.now())
      yield* client.send(Envelope.make("ping", seq))
      const next = start + seq * BEAT_EVERY_MS
      yield* Effect.sleep(Math.max(0, next - performance.now()))
    }
    yield* Effect.sleep(200) // the last pongs
    return seq
  })

const program = Effect.gen(function* () {
  console.log(
    `hol benchmark: TCP 127.0.0.1, heartbeats every ${BEAT_EVERY_MS} ms for ${BEATS_FOR_MS / 1000} s, receiver stalls after ${STALL_AFTER / MiB} MiB, ackProgressTimeout ${ACK_PROGRESS_TIMEOUT} (short, for the run), node ${process.version}`,
  )
  const transport = yield* Transport.Transport
  const listener = yield* transport.listen("127.0.0.1:0")
  const stalled = yield* Deferred.make<number>()
  yield* Effect.forkScoped(
    listener.connections.pipe(Stream.runForEach((connection) => Effect.forkScoped(serve(connection, stalled)))),
  )
  const client = yield* transport.connect(listener.address)
  const pongs = new Map<number, number>()
  const rtts: Array<number> = []
  yield* Effect.forkScoped(
    client.inbound.pipe(
      Stream.runForEach((item) =>
        Effect.sync(() => {
          if (item._tag !== "Message" || item.envelope.tag !== "pong") return
          const sentAt = pongs.get(item.envelope.body as number)
          if (sentAt !== undefined) rtts.push(performance.now() - sentAt)
        }),
      ),
      Effect.ignore,
    ),
  )

  // Warm-up (JIT, socket buffers), not reported.
  yield* Effect.forEach(
    Array.from({ length: 200 }, (_, i) => i),
    (i) => client.send(Envelope.make("warm", i)),
  )
  const idleSent = yield* beats(client, pongs, rtts)
  const idle = summarize(rtts, idleSent)
  console.log(
    `idle connection:  p50 ${fmt(idle.p50)} ms, p99 ${fmt(idle.p99)} ms, max ${fmt(idle.max)} ms (${idle.count} round trips, ${idle.lost} unanswered)`,
  )

  // The bulk sender: a stream under the watchdog, restarted after each AckStalled.
  const detections: Array<number> = []
  let restarts = 0
  const sender = yield* Effect.forkScoped(
    Effect.gen(function* () {
      while (true) {
        const exit = yield* Effect.exit(
          AckProgressWatchdog.watch((onProgress) => client.sendBytes({ tag: "bulk" }, bulk, { onProgress }), {
            ackProgressTimeout: ACK_PROGRESS_TIMEOUT,
            checkInterval: "50 millis",
          }),
        )
        if (exit._tag === "Success") return
        detections.push(performance.now())
        restarts++
      }
    }),
  )
  const stallAt = yield* Deferred.await(stalled)
  const stallSent = yield* beats(client, pongs, rtts)
  const stall = summarize(rtts, stallSent)
  yield* Fiber.interrupt(sender)
  const detectMs = detections.length === 0 ? Number.NaN : detections[0]! - stallAt
  const ratio = stall.p99 / idle.p99
  console.log(
    `during the stall: p50 ${fmt(stall.p50)} ms, p99 ${fmt(stall.p99)} ms, max ${fmt(stall.max)} ms (${stall.count} round trips, ${stall.lost} unanswered)`,
  )
  console.log(`ratio p99 stall / idle: ${ratio.toFixed(2)}`)
  console.log(
    `stall to AckStalled: ${fmt(detectMs)} ms (ackProgressTimeout ${ACK_PROGRESS_TIMEOUT}, 50 ms checks); ${restarts} AckStalled in the 5 s, each stream restarted`,
  )
  console.log(
    `target p99 during the stall < ${TARGET_P99_MS} ms: ${stall.p99 < TARGET_P99_MS ? "met" : "NOT met"} (${fmt(stall.p99)} ms)`,
  )
  console.log(
    JSON.stringify({
      bench: "hol",
      p99Ms: Number(stall.p99.toFixed(3)),
      idleP99Ms: Number(idle.p99.toFixed(3)),
      ratio: Number(ratio.toFixed(3)),
      detectMs: Number(detectMs.toFixed(1)),
    }),
  )
})

NodeRuntime.runMain(
  program.pipe(
    Effect.scoped,
    Effect.provide(NodeTransport.layer()),
    Effect.provideService(References.MinimumLogLevel, "Error"),
  ),
)
