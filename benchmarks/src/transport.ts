/**
 * Transport throughput: 256 MiB streamed over `@fedguard/transport-node` on
 * 127.0.0.1 (a chunked byte stream with ACK window, sent from one reused
 * buffer and counted by the receiver), against the same bytes through a plain
 * `node:net` socket pipe in the same process. After an uncounted 32 MiB
 * warm-up of each, the two run in interleaved rounds (a loaded machine slows
 * both alike) and the medians are compared.
 * Prints MiB/s of both, their ratio, and the peak RSS above the process
 * baseline while fedguard streams (sampled every 50 ms). The last line is one
 * JSON object.
 *
 *   node benchmarks/dist/transport.js [totalMiB]
 *
 * Environment: BENCH_ROUNDS (default 5), BENCH_OPTIONS (JSON
 * `NodeTransport.Options`, e.g. `{"chunkBytes":65536,"windowBytes":1048576}`).
 */

import * as Net from "node:net"
import { Transport } from "@fedguard/transport"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect, Stream } from "effect"

const MiB = 1024 * 1024
const benchBytes = Number(process.argv[2] ?? 256) * MiB
// The sender's source buffer, reused for every piece: nothing is allocated per chunk on the way out.
const sourceBytes = MiB

interface RssProbe {
  readonly stop: () => number
}

// Samples RSS every 50 ms and returns the peak above `baseline` when stopped.
const sampleRss = (baseline: number): RssProbe => {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  return {
    stop: () => {
      clearInterval(timer)
      peak = Math.max(peak, process.memoryUsage().rss)
      return (peak - baseline) / MiB
    },
  }
}

const source = new Uint8Array(sourceBytes).map((_, i) => (i * 31 + 7) & 0xff)

const pieces = (totalBytes: number): Stream.Stream<Uint8Array> => {
  const count = Math.ceil(totalBytes / sourceBytes)
  return Stream.range(0, count - 1).pipe(
    Stream.map((i) => (i === count - 1 ? source.subarray(0, totalBytes - i * sourceBytes) : source)),
  )
}

// fedguard: one connection, one byte stream; done when every byte was acknowledged, i.e. consumed.
const fedguard = (options: NodeTransport.Options, totalBytes: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const listener = yield* transport.listen("127.0.0.1:0")
    let received = 0
    yield* Effect.forkScoped(
      listener.connections.pipe(
        Stream.runForEach((connection) =>
          connection.inbound.pipe(
            Stream.runForEach((item) =>
              item._tag === "Transfer"
                ? Stream.runForEach(item.transfer.bytes, (chunk) =>
                    Effect.sync(() => {
                      received += chunk.byteLength
                    }),
                  )
                : Effect.void,
            ),
            Effect.ignore,
          ),
        ),
      ),
    )
    const client = yield* transport.connect(listener.address)
    const started = performance.now()
    const receipt = yield* client.sendBytes({ tag: "bench", totalBytes }, pieces(totalBytes))
    const seconds = (performance.now() - started) / 1000
    const stats = yield* client.stats
    if (received !== totalBytes || receipt.bytes !== totalBytes) {
      return yield* Effect.die(`received ${received} of ${totalBytes} bytes`)
    }
    return { seconds, chunks: receipt.chunks, acks: stats.framesIn }
  }).pipe(Effect.scoped, Effect.provide(NodeTransport.layer(options)))

// Baseline: the same bytes through a plain socket, with write()/drain backpressure, counted on arrival.
const raw = (totalBytes: number): Promise<number> =>
  new Promise((resolve, reject) => {
    let received = 0
    let started = 0
    const server = Net.createServer({ noDelay: true }, (socket) => {
      socket.on("data", (chunk) => {
        received += chunk.byteLength
        if (received === totalBytes) {
          const seconds = (performance.now() - started) / 1000
          socket.destroy()
          server.close()
          resolve(seconds)
        }
      })
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const client = Net.createConnection({ host: "127.0.0.1", port, noDelay: true }, () => {
        started = performance.now()
        let sent = 0
        const pump = () => {
          while (sent < totalBytes) {
            const piece = source.subarray(0, Math.min(sourceBytes, totalBytes - sent))
            sent += piece.byteLength
            if (!client.write(piece)) {
              client.once("drain", pump)
              return
            }
          }
          client.end()
        }
        pump()
      })
      client.on("error", reject)
    })
  })

const mibps = (seconds: number) => benchBytes / MiB / seconds
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits
const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
// CPU milliseconds (user + system) an operation cost this process.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

const main = Effect.gen(function* () {
  const options: NodeTransport.Options = JSON.parse(process.env.BENCH_OPTIONS ?? "{}")
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
  const baseline = process.memoryUsage().rss
  console.log(
    `transport benchmark: ${benchBytes / MiB} MiB over 127.0.0.1, ${rounds} interleaved rounds, Node ${process.version}`,
  )
  console.log(`  options ${JSON.stringify(options)}; process baseline RSS ${round(baseline / MiB)} MiB`)

  // Warm-up, not counted: both paths get JIT-compiled before anything is timed.
  yield* fedguard(options, 32 * MiB)
  yield* Effect.promise(() => raw(32 * MiB))

  const fedguardRates: Array<number> = []
  const rawRates: Array<number> = []
  let peakRssMiB = 0
  for (let round_ = 1; round_ <= rounds; round_++) {
    const probe = sampleRss(baseline)
    const cpu = process.cpuUsage()
    const run = yield* fedguard(options, benchBytes)
    const fedguardCpu = cpuMs(cpu)
    const peak = probe.stop()
    peakRssMiB = Math.max(peakRssMiB, peak)
    fedguardRates.push(mibps(run.seconds))

    const rawCpuStart = process.cpuUsage()
    const rawSeconds = yield* Effect.promise(() => raw(benchBytes))
    const rawCpu = cpuMs(rawCpuStart)
    rawRates.push(mibps(rawSeconds))
    console.log(
      `  round ${round_}: fedguard ${round(mibps(run.seconds))} MiB/s (${round(run.seconds, 2)} s, ${run.chunks} chunks, ${run.acks} acks, ${round(fedguardCpu, 0)} ms CPU, peak RSS +${round(peak)} MiB) | node:net ${round(mibps(rawSeconds))} MiB/s (${round(rawSeconds, 2)} s, ${round(rawCpu, 0)} ms CPU)`,
    )
  }

  const fedguardMiBps = median(fedguardRates)
  const rawMiBps = median(rawRates)
  const ratio = fedguardMiBps / rawMiBps
  console.log(`  median fedguard transport-node: ${round(fedguardMiBps)} MiB/s`)
  console.log(`  median node:net socket pipe:    ${round(rawMiBps)} MiB/s`)
  console.log(`  ratio fedguard / raw: ${round(ratio, 3)} (target >= 0.5)`)
  console.log(`  peak RSS above baseline while fedguard streamed: ${round(peakRssMiB)} MiB (target < 256 MiB)`)
  console.log(
    JSON.stringify({
      bench: "transport",
      fedguardMiBps: round(fedguardMiBps),
      rawMiBps: round(rawMiBps),
      ratio: round(ratio, 3),
      peakRssMiB: round(peakRssMiB),
    }),
  )
})

Effect.runPromise(main).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
