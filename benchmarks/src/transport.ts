/**
 * Transport throughput: 256 MiB streamed over `@fedguard/transport-node` on
 * 127.0.0.1 (a chunked byte stream with ACK window, sent from one reused
 * buffer and counted by the receiver), against the same bytes through a plain
 * `node:net` socket pipe, in two modes:
 *
 * - one process: sender and receiver share this process (and its one
 *   JavaScript thread), so the ratio is close to a CPU ratio;
 * - two processes: a sender child and a receiver child (for fedguard and for
 *   the raw pipe alike), as on a real federation, each with its own thread.
 *
 * After an uncounted 32 MiB warm-up of each, fedguard and the raw pipe run in
 * interleaved rounds (a loaded machine slows both alike) and the medians are
 * compared. Each run also reports CPU time (user + system) per GiB on each
 * side: in two-process mode, each child's `process.cpuUsage()`; in one-process
 * mode both sides together.
 *
 * Memory: the one-process rounds sample this process's RSS every 50 ms (the
 * `peakRssMiB` field, as before); the two-process rounds report each child's
 * peak (`maxRSS`) above its baseline. Then, to show that memory is bounded by
 * the window and not by the payload, fresh processes stream 256 MiB and 1 GiB
 * once each (after the warm-up) in both modes, and their peak RSS is printed
 * side by side.
 *
 * The last line is one JSON object: `ratio` is the one-process ratio,
 * `twoProcessRatio` the two-process one.
 *
 *   node benchmarks/dist/transport.js [totalMiB]
 *
 * Environment: BENCH_ROUNDS (default 5), BENCH_OPTIONS (JSON
 * `NodeTransport.Options`, e.g. `{"chunkBytes":65536,"windowBytes":1048576}`),
 * BENCH_RSS_MIB (payload sizes of the memory check, default `256,1024`; empty
 * skips it), BENCH_MODES (`one,two`, the default, or either alone). Children
 * inherit NODE_OPTIONS, so `NODE_OPTIONS=--max-semi-space-size=1` applies to
 * every process.
 */

import { type ChildProcess, fork } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { Transport } from "@fedguard/transport"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect, Scope, Stream } from "effect"

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const WARMUP = 32 * MiB
// The sender's source buffer, reused for every piece: nothing is allocated per chunk on the way out.
const sourceBytes = MiB
const source = new Uint8Array(sourceBytes).map((_, i) => (i * 31 + 7) & 0xff)

const options: NodeTransport.Options = JSON.parse(process.env.BENCH_OPTIONS ?? "{}")

type Impl = "fedguard" | "raw"

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits
const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const spread = (values: ReadonlyArray<number>) => `${round(Math.min(...values))}–${round(Math.max(...values))}`
const mibps = (bytes: number, seconds: number) => bytes / MiB / seconds
// CPU milliseconds (user + system, and system alone) this process spent since `since`.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}
const sysMs = (since: NodeJS.CpuUsage) => process.cpuUsage(since).system / 1000
const perGiB = (ms: number, bytes: number) => (ms * GiB) / bytes
// This process's peak RSS over its whole life (resourceUsage reports KiB).
const maxRss = () => process.resourceUsage().maxRSS * 1024

const pieces = (totalBytes: number): Stream.Stream<Uint8Array> => {
  const count = Math.ceil(totalBytes / sourceBytes)
  return Stream.range(0, count - 1).pipe(
    Stream.map((i) => (i === count - 1 ? source.subarray(0, totalBytes - i * sourceBytes) : source)),
  )
}

// ---------------------------------------------------------------------------------------------
// The four endpoints. fedguard's receiver counts every incoming byte stream and reports each one
// that ends; its sender's time ends with the receipt (every byte acknowledged, i.e. consumed).
// The raw receiver answers one byte once it has counted every byte, which ends the raw sender's time.
// ---------------------------------------------------------------------------------------------

const fedguardReceiver = (onTransfer: (bytes: number) => void) =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const listener = yield* transport.listen("127.0.0.1:0")
    yield* Effect.forkScoped(
      listener.connections.pipe(
        Stream.runForEach((connection) =>
          Effect.forkScoped(
            connection.inbound.pipe(
              Stream.runForEach((item) => {
                if (item._tag !== "Transfer") return Effect.void
                let received = 0
                return Stream.runForEach(item.transfer.bytes, (chunk) =>
                  Effect.sync(() => {
                    received += chunk.byteLength
                  }),
                ).pipe(Effect.andThen(Effect.sync(() => onTransfer(received))))
              }),
              Effect.ignore,
            ),
          ),
        ),
      ),
    )
    return listener.address
  })

const fedguardSend = (address: string, totalBytes: number) =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const cpu = process.cpuUsage()
    const client = yield* transport.connect(address)
    const started = performance.now()
    const receipt = yield* client.sendBytes({ tag: "bench", totalBytes }, pieces(totalBytes))
    const seconds = (performance.now() - started) / 1000
    const ms = cpuMs(cpu)
    const sys = sysMs(cpu)
    const stats = yield* client.stats
    yield* client.close("done")
    if (receipt.bytes !== totalBytes) return yield* Effect.die(`sent ${receipt.bytes} of ${totalBytes} bytes`)
    return { seconds, cpuMs: ms, sysMs: sys, chunks: receipt.chunks, acks: stats.framesIn }
  }).pipe(Effect.scoped)

const rawReceiver = (onTransfer: (bytes: number) => void, expected: () => number): Promise<Net.Server> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer({ noDelay: true }, (socket) => {
      let received = 0
      socket.on("data", (chunk) => {
        received += chunk.byteLength
        if (received === expected()) {
          socket.write(new Uint8Array(1))
          onTransfer(received)
        }
      })
      socket.on("error", () => socket.destroy())
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

// The same bytes through a plain socket, with write()/drain backpressure; done when the receiver answers.
const rawSend = (port: number, totalBytes: number): Promise<{ seconds: number; cpuMs: number; sysMs: number }> =>
  new Promise((resolve, reject) => {
    const cpu = process.cpuUsage()
    let started = 0
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
      }
      pump()
    })
    client.once("data", () => {
      const seconds = (performance.now() - started) / 1000
      const ms = cpuMs(cpu)
      const sys = sysMs(cpu)
      client.destroy()
      resolve({ seconds, cpuMs: ms, sysMs: sys })
    })
    client.on("error", reject)
  })

// ---------------------------------------------------------------------------------------------
// One-process mode: both endpoints in this process.
// ---------------------------------------------------------------------------------------------

const fedguardOneProcess = (totalBytes: number) =>
  Effect.gen(function* () {
    let received = 0
    const address = yield* fedguardReceiver((bytes) => {
      received = bytes
    })
    const run = yield* fedguardSend(address, totalBytes)
    if (received !== totalBytes) return yield* Effect.die(`received ${received} of ${totalBytes} bytes`)
    return run
  }).pipe(Effect.scoped, Effect.provide(NodeTransport.layer(options)))

const rawOneProcess = async (totalBytes: number) => {
  const server = await rawReceiver(
    () => undefined,
    () => totalBytes,
  )
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  try {
    return await rawSend(port, totalBytes)
  } finally {
    server.close()
  }
}

const runOneProcess = (
  impl: Impl,
  totalBytes: number,
): Promise<{ seconds: number; cpuMs: number; sysMs: number; acks?: number | undefined }> =>
  impl === "fedguard" ? Effect.runPromise(fedguardOneProcess(totalBytes)) : rawOneProcess(totalBytes)

// ---------------------------------------------------------------------------------------------
// Children: `--role receiver|sender|one-process --impl fedguard|raw`, driven over the IPC channel.
// ---------------------------------------------------------------------------------------------

type Request =
  | { readonly type: "begin"; readonly totalBytes: number }
  | { readonly type: "send"; readonly address: string; readonly totalBytes: number }
  | { readonly type: "run"; readonly totalBytes: number }
  | { readonly type: "memory" }
  | { readonly type: "exit" }

type Reply =
  | { readonly type: "ready"; readonly address?: string }
  | { readonly type: "begun" }
  | { readonly type: "received"; readonly bytes: number; readonly cpuMs: number; readonly sysMs: number }
  | {
      readonly type: "sent"
      readonly seconds: number
      readonly cpuMs: number
      readonly sysMs: number
      readonly acks?: number | undefined
    }
  | { readonly type: "memory"; readonly baselineRss: number; readonly maxRss: number }

const reply = (message: Reply) => process.send!(message)

const child = async (role: string, impl: Impl) => {
  // After the modules are loaded and before anything is streamed: what the payload adds is measured from here.
  const baselineRss = process.memoryUsage().rss
  let expected = 0
  let cpu = process.cpuUsage()
  const onTransfer = (bytes: number) => reply({ type: "received", bytes, cpuMs: cpuMs(cpu), sysMs: sysMs(cpu) })
  const handlers: Record<string, (request: Request) => Promise<void> | void> = {
    begin: (request) => {
      if (request.type !== "begin") return
      expected = request.totalBytes
      cpu = process.cpuUsage()
      reply({ type: "begun" })
    },
    send: async (request) => {
      if (request.type !== "send") return
      if (impl === "fedguard") {
        const run = await Effect.runPromise(
          fedguardSend(request.address, request.totalBytes).pipe(Effect.provide(NodeTransport.layer(options))),
        )
        reply({ type: "sent", seconds: run.seconds, cpuMs: run.cpuMs, sysMs: run.sysMs, acks: run.acks })
      } else {
        const run = await rawSend(Number(request.address.split(":")[1]), request.totalBytes)
        reply({ type: "sent", ...run })
      }
    },
    run: async (request) => {
      if (request.type !== "run") return
      const run = await runOneProcess(impl, request.totalBytes)
      reply({ type: "sent", seconds: run.seconds, cpuMs: run.cpuMs, sysMs: run.sysMs })
    },
    memory: () => void reply({ type: "memory", baselineRss, maxRss: maxRss() }),
    exit: () => process.exit(0),
  }
  process.on("message", (request: Request) => {
    Promise.resolve(handlers[request.type]?.(request)).catch((error: unknown) => {
      console.error(error)
      process.exit(1)
    })
  })
  if (role !== "receiver") return reply({ type: "ready" })
  if (impl === "raw") {
    const server = await rawReceiver(onTransfer, () => expected)
    const address = server.address()
    return reply({ type: "ready", address: `127.0.0.1:${typeof address === "object" && address ? address.port : 0}` })
  }
  // The receiver lives until the process exits: its Scope is never closed.
  const scope = Scope.makeUnsafe()
  const address = await Effect.runPromise(
    fedguardReceiver(onTransfer).pipe(Scope.provide(scope), Effect.provide(NodeTransport.layer(options))),
  )
  reply({ type: "ready", address })
}

// The orchestrator's handle on a child: requests go out in order, replies are awaited by type.
class Worker {
  private readonly process: ChildProcess
  private readonly inbox: Array<Reply> = []
  private waiter: (() => void) | undefined
  private failure: Error | undefined

  constructor(role: string, impl: Impl) {
    this.process = fork(fileURLToPath(import.meta.url), ["--role", role, "--impl", impl], { stdio: "inherit" })
    this.process.on("message", (message: Reply) => {
      this.inbox.push(message)
      this.waiter?.()
    })
    this.process.on("exit", (code) => {
      if (code !== 0) this.failure = new Error(`${impl} ${role} exited with ${code}`)
      this.waiter?.()
    })
  }

  async next<T extends Reply["type"]>(type: T): Promise<Extract<Reply, { type: T }>> {
    while (true) {
      const index = this.inbox.findIndex((message) => message.type === type)
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Extract<Reply, { type: T }>
      if (this.failure !== undefined) throw this.failure
      await new Promise<void>((resolve) => {
        this.waiter = resolve
      })
      this.waiter = undefined
    }
  }

  request<T extends Reply["type"]>(message: Request, type: T): Promise<Extract<Reply, { type: T }>> {
    this.process.send(message)
    return this.next(type)
  }

  // Peak RSS above the child's baseline, in MiB.
  async peakRssMiB(): Promise<number> {
    const memory = await this.request({ type: "memory" }, "memory")
    return (memory.maxRss - memory.baselineRss) / MiB
  }

  stop(): void {
    this.process.send({ type: "exit" })
  }
}

interface Run {
  readonly seconds: number
  readonly senderCpuMs: number
  readonly senderSysMs: number
  readonly receiverCpuMs: number
  readonly receiverSysMs: number
  readonly acks: number | undefined
}

// A receiver child and a sender child of one implementation, reused across rounds.
class ProcessPair {
  readonly receiver: Worker
  readonly sender: Worker
  readonly impl: Impl
  private address = ""

  constructor(impl: Impl) {
    this.impl = impl
    this.receiver = new Worker("receiver", impl)
    this.sender = new Worker("sender", impl)
  }

  async ready(): Promise<void> {
    const ready = await this.receiver.next("ready")
    this.address = ready.address!
    await this.sender.next("ready")
  }

  async run(totalBytes: number): Promise<Run> {
    await this.receiver.request({ type: "begin", totalBytes }, "begun")
    const sent = await this.sender.request({ type: "send", address: this.address, totalBytes }, "sent")
    const received = await this.receiver.next("received")
    if (received.bytes !== totalBytes) throw new Error(`${this.impl}: received ${received.bytes} of ${totalBytes}`)
    return {
      seconds: sent.seconds,
      senderCpuMs: sent.cpuMs,
      senderSysMs: sent.sysMs,
      receiverCpuMs: received.cpuMs,
      receiverSysMs: received.sysMs,
      acks: sent.acks,
    }
  }

  async peakRssMiB(): Promise<{ sender: number; receiver: number }> {
    return { sender: await this.sender.peakRssMiB(), receiver: await this.receiver.peakRssMiB() }
  }

  stop(): void {
    this.sender.stop()
    this.receiver.stop()
  }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.
// ---------------------------------------------------------------------------------------------

interface Series {
  readonly rates: Array<number>
  readonly senderCpu: Array<number>
  readonly receiverCpu: Array<number>
}

const series = (): Series => ({ rates: [], senderCpu: [], receiverCpu: [] })

// Peak RSS above the process baseline, sampled every 50 ms (for the one-process rounds in this process).
const sampleRss = (baseline: number) => {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  return () => {
    clearInterval(timer)
    peak = Math.max(peak, process.memoryUsage().rss)
    return (peak - baseline) / MiB
  }
}

const oneProcessRounds = async (benchBytes: number, rounds: number) => {
  const baseline = process.memoryUsage().rss
  await runOneProcess("fedguard", WARMUP)
  await runOneProcess("raw", WARMUP)
  const fedguard = series()
  const raw = series()
  let peakRssMiB = 0
  for (let i = 1; i <= rounds; i++) {
    const stop = sampleRss(baseline)
    const ours = await runOneProcess("fedguard", benchBytes)
    const peak = stop()
    peakRssMiB = Math.max(peakRssMiB, peak)
    const theirs = await runOneProcess("raw", benchBytes)
    fedguard.rates.push(mibps(benchBytes, ours.seconds))
    fedguard.senderCpu.push(perGiB(ours.cpuMs, benchBytes))
    raw.rates.push(mibps(benchBytes, theirs.seconds))
    raw.senderCpu.push(perGiB(theirs.cpuMs, benchBytes))
    console.log(
      `  one process, round ${i}: fedguard ${round(mibps(benchBytes, ours.seconds))} MiB/s (${ours.acks} acks, ${round(ours.cpuMs, 0)} ms CPU (sys ${round(ours.sysMs, 0)}), peak RSS +${round(peak)} MiB) | node:net ${round(mibps(benchBytes, theirs.seconds))} MiB/s (${round(theirs.cpuMs, 0)} ms CPU (sys ${round(theirs.sysMs, 0)}))`,
    )
  }
  return { fedguard, raw, peakRssMiB }
}

const twoProcessRounds = async (benchBytes: number, rounds: number) => {
  const pairs = { fedguard: new ProcessPair("fedguard"), raw: new ProcessPair("raw") }
  await Promise.all([pairs.fedguard.ready(), pairs.raw.ready()])
  await pairs.fedguard.run(WARMUP)
  await pairs.raw.run(WARMUP)
  const results = { fedguard: series(), raw: series() }
  for (let i = 1; i <= rounds; i++) {
    const line: Array<string> = []
    for (const impl of ["fedguard", "raw"] as const) {
      const run = await pairs[impl].run(benchBytes)
      const rate = mibps(benchBytes, run.seconds)
      results[impl].rates.push(rate)
      results[impl].senderCpu.push(perGiB(run.senderCpuMs, benchBytes))
      results[impl].receiverCpu.push(perGiB(run.receiverCpuMs, benchBytes))
      line.push(
        `${impl === "raw" ? "node:net" : impl} ${round(rate)} MiB/s (${run.acks === undefined ? "" : `${run.acks} acks, `}CPU sender ${round(run.senderCpuMs, 0)} ms (sys ${round(run.senderSysMs, 0)}), receiver ${round(run.receiverCpuMs, 0)} ms (sys ${round(run.receiverSysMs, 0)}))`,
      )
    }
    console.log(`  two processes, round ${i}: ${line.join(" | ")}`)
  }
  const rss = { fedguard: await pairs.fedguard.peakRssMiB(), raw: await pairs.raw.peakRssMiB() }
  pairs.fedguard.stop()
  pairs.raw.stop()
  return { ...results, rss }
}

interface MemoryRow {
  readonly mode: "one process" | "two processes"
  readonly impl: Impl
  readonly payloadMiB: number
  readonly mibps: number
  readonly senderMiB: number
  readonly receiverMiB: number | undefined
}

// Fresh processes per payload size: a warm-up, then one run; the peak covers both.
const memoryRow = async (mode: MemoryRow["mode"], impl: Impl, payload: number): Promise<MemoryRow> => {
  if (mode === "one process") {
    const worker = new Worker("one-process", impl)
    await worker.next("ready")
    await worker.request({ type: "run", totalBytes: WARMUP }, "sent")
    const run = await worker.request({ type: "run", totalBytes: payload }, "sent")
    const senderMiB = await worker.peakRssMiB()
    worker.stop()
    return {
      mode,
      impl,
      payloadMiB: payload / MiB,
      mibps: mibps(payload, run.seconds),
      senderMiB,
      receiverMiB: undefined,
    }
  }
  const pair = new ProcessPair(impl)
  await pair.ready()
  await pair.run(WARMUP)
  const run = await pair.run(payload)
  const rss = await pair.peakRssMiB()
  pair.stop()
  return {
    mode,
    impl,
    payloadMiB: payload / MiB,
    mibps: mibps(payload, run.seconds),
    senderMiB: rss.sender,
    receiverMiB: rss.receiver,
  }
}

const table = (rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  for (const [index, row] of rows.entries()) {
    console.log(`  | ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`)
    if (index === 0) console.log(`  | ${widths.map((width) => "-".repeat(width)).join(" | ")} |`)
  }
}

const orchestrate = async () => {
  const benchBytes = Number(process.argv[2] ?? 256) * MiB
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
  const modes = (process.env.BENCH_MODES ?? "one,two").split(",")
  const rssPayloads = (process.env.BENCH_RSS_MIB ?? "256,1024")
    .split(",")
    .filter((size) => size.trim() !== "")
    .map((size) => Number(size) * MiB)
  console.log(
    `transport benchmark: ${benchBytes / MiB} MiB over 127.0.0.1, ${rounds} interleaved rounds per mode, Node ${process.version}`,
  )
  // V8 flags change the result a lot (see transport-node's README on --max-semi-space-size): say which ran.
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(" ")].filter((flag) => flag !== "")
  console.log(
    `  options ${JSON.stringify(options)}; node flags ${flags.length === 0 ? "none" : flags.join(" ")}; process baseline RSS ${round(process.memoryUsage().rss / MiB)} MiB`,
  )

  const one = modes.includes("one") ? await oneProcessRounds(benchBytes, rounds) : undefined
  const two = modes.includes("two") ? await twoProcessRounds(benchBytes, rounds) : undefined

  const cpu = (values: ReadonlyArray<number> | undefined) =>
    values === undefined || values.length === 0 ? "–" : `${round(median(values), 0)}`
  const rate = (values: ReadonlyArray<number> | undefined) =>
    values === undefined ? "–" : `${round(median(values))} (${spread(values)})`
  console.log(`\n  medians of ${rounds} rounds (spread in brackets); CPU = user + system ms per GiB`)
  table([
    ["mode", "path", "MiB/s", "ratio", "sender CPU/GiB", "receiver CPU/GiB"],
    ...(one === undefined
      ? []
      : [
          ["one process", "fedguard", rate(one.fedguard.rates), "", `${cpu(one.fedguard.senderCpu)} (both sides)`, ""],
          ["one process", "node:net", rate(one.raw.rates), "", `${cpu(one.raw.senderCpu)} (both sides)`, ""],
          ["one process", "ratio", "", `${round(median(one.fedguard.rates) / median(one.raw.rates), 3)}`, "", ""],
        ]),
    ...(two === undefined
      ? []
      : [
          [
            "two processes",
            "fedguard",
            rate(two.fedguard.rates),
            "",
            cpu(two.fedguard.senderCpu),
            cpu(two.fedguard.receiverCpu),
          ],
          ["two processes", "node:net", rate(two.raw.rates), "", cpu(two.raw.senderCpu), cpu(two.raw.receiverCpu)],
          ["two processes", "ratio", "", `${round(median(two.fedguard.rates) / median(two.raw.rates), 3)}`, "", ""],
        ]),
  ])

  const memory: Array<MemoryRow> = []
  if (rssPayloads.length > 0) {
    for (const mode of ["one process", "two processes"] as const) {
      if (!modes.includes(mode === "one process" ? "one" : "two")) continue
      for (const impl of ["fedguard", "raw"] as const) {
        for (const payload of rssPayloads) memory.push(await memoryRow(mode, impl, payload))
      }
    }
    console.log("\n  peak RSS above each process's baseline vs payload (fresh processes: 32 MiB warm-up, then one run)")
    table([
      ["mode", "path", "payload", "MiB/s", "sender peak RSS", "receiver peak RSS"],
      ...memory.map((row) => [
        row.mode,
        row.impl === "raw" ? "node:net" : row.impl,
        `${row.payloadMiB} MiB`,
        `${round(row.mibps)}`,
        row.receiverMiB === undefined ? `+${round(row.senderMiB)} MiB (both sides)` : `+${round(row.senderMiB)} MiB`,
        row.receiverMiB === undefined ? "" : `+${round(row.receiverMiB)} MiB`,
      ]),
    ])
  }

  const ratio = one === undefined ? undefined : median(one.fedguard.rates) / median(one.raw.rates)
  const twoProcessRatio = two === undefined ? undefined : median(two.fedguard.rates) / median(two.raw.rates)
  console.log("")
  if (ratio !== undefined) console.log(`  one-process ratio fedguard / raw: ${round(ratio, 3)} (target >= 0.8)`)
  if (twoProcessRatio !== undefined) {
    console.log(`  two-process ratio fedguard / raw: ${round(twoProcessRatio, 3)} (target >= 0.9)`)
  }
  const fedguardMemory = memory.filter((row) => row.impl === "fedguard")
  if (fedguardMemory.length > 0) {
    const peaks = fedguardMemory.flatMap((row) => [row.senderMiB, row.receiverMiB ?? 0])
    console.log(
      `  fedguard peak RSS above baseline, any process, ${rssPayloads.map((bytes) => `${bytes / MiB}`).join(" / ")} MiB payloads: at most ${round(Math.max(...peaks))} MiB`,
    )
  }
  const byPayload = (mode: MemoryRow["mode"], impl: Impl) =>
    Object.fromEntries(
      memory
        .filter((row) => row.mode === mode && row.impl === impl)
        .map((row) => [
          `${row.payloadMiB}`,
          row.receiverMiB === undefined
            ? round(row.senderMiB)
            : { sender: round(row.senderMiB), receiver: round(row.receiverMiB) },
        ]),
    )
  console.log(
    JSON.stringify({
      bench: "transport",
      fedguardMiBps: one && round(median(one.fedguard.rates)),
      rawMiBps: one && round(median(one.raw.rates)),
      ratio: ratio && round(ratio, 3),
      peakRssMiB: one && round(one.peakRssMiB),
      twoProcessFedguardMiBps: two && round(median(two.fedguard.rates)),
      twoProcessRawMiBps: two && round(median(two.raw.rates)),
      twoProcessRatio: twoProcessRatio && round(twoProcessRatio, 3),
      cpuMsPerGiB: {
        oneProcess: one && {
          fedguard: round(median(one.fedguard.senderCpu), 0),
          raw: round(median(one.raw.senderCpu), 0),
        },
        twoProcess: two && {
          fedguardSender: round(median(two.fedguard.senderCpu), 0),
          fedguardReceiver: round(median(two.fedguard.receiverCpu), 0),
          rawSender: round(median(two.raw.senderCpu), 0),
          rawReceiver: round(median(two.raw.receiverCpu), 0),
        },
      },
      twoProcessPeakRssMiB: two && {
        fedguard: { sender: round(two.rss.fedguard.sender), receiver: round(two.rss.fedguard.receiver) },
        raw: { sender: round(two.rss.raw.sender), receiver: round(two.rss.raw.receiver) },
      },
      peakRssMiBByPayload:
        memory.length === 0
          ? undefined
          : {
              oneProcess: { fedguard: byPayload("one process", "fedguard"), raw: byPayload("one process", "raw") },
              twoProcesses: {
                fedguard: byPayload("two processes", "fedguard"),
                raw: byPayload("two processes", "raw"),
              },
            },
    }),
  )
}

const roleAt = process.argv.indexOf("--role")
const main =
  roleAt >= 0
    ? child(process.argv[roleAt + 1]!, process.argv[process.argv.indexOf("--impl") + 1] as Impl)
    : orchestrate()
main.catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
