/**
 * What the real fed-server process holds in memory, measured from outside:
 * the benchmark starts `fed-server` and `fed-client` processes on 127.0.0.1
 * (the apps' own binaries, found through their packages) and reads VmRSS,
 * VmHWM (the kernel's high-water mark of RSS, so a peak between two samples
 * is not missed) and rchar (bytes read, sockets included) from
 * `/proc/<pid>/status` and `/proc/<pid>/io` every 50 ms. Every process runs
 * with its defaults except the flags named below; the server keeps its job in
 * a state file in a temporary directory (its default is a file too: with
 * `--state :memory:` the SQLite database, and the checkpoints it keeps, would
 * live in the server's RSS), and spills updates there too (`TMPDIR`). The
 * page cache of those files is the kernel's, not the process's RSS.
 *
 * Baseline: the server's RSS once it listens with MNIST loaded and its job
 * created, before any client has connected (the model does not exist yet:
 * it is initialised when the first round starts). Read naively, that figure
 * holds 40–110 MiB of garbage from loading MNIST, which V8 collects only
 * when the server next allocates (an idle process does not collect), so it
 * moves every "above baseline" figure by up to that much from run to run. So
 * the baseline is the live one: a probe server with the same flags plus
 * `--memory-threshold 1B` runs its own full GC about 10 s after it starts
 * (the server's memory cleanup, checked every 10 s), and its RSS after that
 * GC is the baseline (median of 1 s of samples). The measured servers do not
 * get that flag; their own RSS before any client (median of 1 s, 2 s after
 * their job was created) is printed as well.
 *
 * Fleet: 8 clients, `mlp:4096,3302` (64 MiB of float32), 3 rounds, one SGD
 * step per client per round (`--local-steps 1`: 8 processes on 2 cores), the
 * server evaluating each round on its 2,000 test digits. Measured: the
 * server's peak RSS from the first client's start to `training-completed`,
 * above the baseline, in MiB and in model sizes; next to it what holding
 * every update in memory would take (8 × 64 MiB, without the global model).
 * Run twice: with the defaults, and with `--memory-cleanup-rounds 1` (a full
 * GC after every round), which tells garbage from memory still in use.
 *
 * Stream: `mlp:16384,15588` (1,024 MiB of float32; the apps allow up to
 * 512 Mi parameters) sent to 2 clients. The full round is not run: on this
 * kind of machine evaluating a 1 GiB model on 2,000 digits takes over 3
 * minutes. (The job store commits such a checkpoint in 8 MiB parts since
 * SQLite refused one blob of 1,000,000,000 bytes or more.) Measured instead,
 * from `round-started` (the model initialised)
 * to the first client's `round-trained`, in two phases split by the clients'
 * rchar: the send (until both clients have read the whole model since the
 * job started running, before the model existed) and the intake (both
 * clients train one step and upload their 1 GiB updates, which the server
 * streams into spill files). The target figure is
 * the server's peak RSS during the send above the baseline plus the model;
 * the intake's peak and the send's peak above the RSS at `round-started` are
 * printed too.
 *
 * Targets (issue): fleet peak ≤ 3 model sizes + 64 MiB; the 1 GiB stream
 * adds ≤ 64 MiB beyond the model. Reported, never asserted. The last line is
 * one JSON object.
 *
 * Long mode (`--long`): `mlp:1024,1756` (10 MiB), 3 clients (min 2),
 * 200 rounds, 50 reconnect cycles: after 50 rounds drawn at random (seeded)
 * from rounds 21–199, a random client among client-1 and client-2 is killed
 * (SIGKILL) as soon as the server reports the round completed, and started
 * again with the same id and shard (a kill waits for the next round while a
 * restarted client has not rejoined yet, so at most one is ever down). The
 * next round may already have started with the killed client in it: the
 * server then excludes it. client-0 is never killed: it is the client that
 * lives through all 200 rounds, so its RSS at round 20 and at round 200
 * compare the same process. RSS "at round n" is the median of the samples
 * taken while round n ran (`round-started` to `round-completed`). Target:
 * round 200 within 1.2 × round 20, for the server and the client.
 *
 * Environment, for finding where memory goes: BENCH_TIMELINE=1 prints the
 * server's RSS every 250 ms of the fleet run with the events around it (and
 * each `MemoryCleaned` event), BENCH_FLEET_ONLY=1 stops after the first fleet
 * run, BENCH_FLEET_FLAGS adds server flags to it (e.g.
 * `--memory-cleanup-rounds 1`).
 *
 *   node benchmarks/dist/memory.js           baseline, fleet twice, stream (about 3 minutes)
 *   node benchmarks/dist/memory.js --long    the long run (5–9 minutes)
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { availableParallelism, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import * as ParentWatch from "@fedguard/app-kit/ParentWatch"
import * as ClientEvent from "@fedguard/fed-client/ClientEvent"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import * as Model from "@fedguard/federation/Model"
import {
  type Cause,
  Clock,
  type Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Queue,
  Random,
  Schedule,
  Schema,
  Scope,
  Stream,
} from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

const KiB = 1024
const MiB = 1024 * KiB
const SAMPLE_EVERY = "50 millis"
const BASELINE_SETTLE = "2 seconds"
const BASELINE_SPAN = "1 second"

const FLEET = { model: "mlp:4096,3302", clients: 8, rounds: 3, timeout: "8 minutes" } as const
const STREAM = { model: "mlp:16384,15588", clients: 2, timeout: "6 minutes" } as const
const LONG = {
  model: "mlp:1024,1756",
  clients: 3,
  minClients: 2,
  rounds: 200,
  reconnects: 50,
  early: 20,
  // Kills are drawn from the rounds after the early reading, so every cycle falls between the two.
  firstKillAfter: 21,
  witness: "client-0",
  victims: ["client-1", "client-2"],
  reported: [20, 50, 100, 150, 200],
  seed: "fedguard-bench-memory",
  timeout: "60 minutes",
} as const
const TARGETS = { fleetModelSizes: 3, fleetSlackMiB: 64, streamAboveModelMiB: 64, longRatio: 1.2 } as const

const bytesOf = (model: Model.Name) => Model.make(model).paramCount * 4

class BenchmarkFailed extends Schema.TaggedError<BenchmarkFailed>()("BenchmarkFailed", {
  reason: Schema.String,
}) {}

// ---------------------------------------------------------------------------------------------
// Memory of a process, from /proc

interface Sample {
  readonly at: number
  readonly rss: number
  readonly hwm: number
  /** rchar: bytes the process has read through read(2) and friends, sockets included. */
  readonly read: number
}

// A `Name:   123 kB` line of a /proc file; NaN when absent (an exited process, a zombie, has no Vm lines).
const procField = (text: string, name: string) => {
  const match = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)
  return match === null ? Number.NaN : Number(match[1])
}

const readProc = (pid: number, file: "status" | "io") =>
  Effect.try({
    try: () => readFileSync(`/proc/${pid}/${file}`, "utf8"),
    catch: () => new BenchmarkFailed({ reason: `process ${pid} is gone` }),
  })

const readSample = (pid: number) =>
  Effect.gen(function* () {
    const status = yield* readProc(pid, "status")
    const io = yield* readProc(pid, "io")
    const rss = procField(status, "VmRSS") * KiB
    const hwm = procField(status, "VmHWM") * KiB
    if (Number.isNaN(rss) || Number.isNaN(hwm)) {
      return yield* new BenchmarkFailed({ reason: `process ${pid} has exited` })
    }
    return { at: yield* Clock.currentTimeMillis, rss, hwm, read: procField(io, "rchar") } satisfies Sample
  })

// The samples of one process, every 50 ms in a fiber of the caller's Scope, until the process exits.
interface Gauge {
  readonly samples: ReadonlyArray<Sample>
}

const gauge = Effect.fnUntraced(function* (pid: number) {
  const samples: Array<Sample> = []
  yield* readSample(pid).pipe(
    Effect.tap((sample) => Effect.sync(() => samples.push(sample))),
    Effect.repeat(Schedule.spaced(SAMPLE_EVERY)),
    Effect.ignore,
    Effect.forkScoped,
  )
  return { samples } satisfies Gauge
})

const inWindow = (samples: ReadonlyArray<Sample>, from: number, to: number) =>
  samples.filter((sample) => sample.at >= from && sample.at <= to)

const median = (values: ReadonlyArray<number>) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

// RSS while nothing in particular happens in [from, to]: the median sample.
const typicalIn = (samples: ReadonlyArray<Sample>, from: number, to: number) =>
  median(inWindow(samples, from, to).map((sample) => sample.rss))

// The most the process held in [from, to]: its highest sample, or its VmHWM when the high-water
// mark rose inside the window (then the peak fell between two samples, inside the window).
const peakIn = (samples: ReadonlyArray<Sample>, from: number, to: number) => {
  const inside = inWindow(samples, from, to)
  const last = inside.at(-1)
  if (last === undefined) return Number.NaN
  const before = samples.filter((sample) => sample.at < from).at(-1) ?? inside[0]!
  const highest = inside.reduce((max, sample) => Math.max(max, sample.rss), 0)
  return last.hwm > before.hwm ? Math.max(highest, last.hwm) : highest
}

// ---------------------------------------------------------------------------------------------
// The processes

const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))
const clientBin = fileURLToPath(import.meta.resolve("@fedguard/fed-client/bin"))
// Random per run; it reaches the children through their environment, never their command lines.
const secret = randomBytes(16).toString("hex")
const STDERR_TAIL = 5

const lines = <E>(bytes: Stream.Stream<Uint8Array, E>) => bytes.pipe(Stream.decodeText(), Stream.splitLines)

// Every line of a child's stdout that is one of its events goes to `queue`, with the time it was read.
const forwardEvents = <A, E, QE>(
  stdout: Stream.Stream<Uint8Array, E>,
  fromLine: (line: string) => Option.Option<A>,
  queue: Queue.Enqueue<Timed<A>, QE>,
) =>
  lines(stdout).pipe(
    Stream.runForEach((line) =>
      Option.match(fromLine(line), {
        onNone: () => Effect.void,
        onSome: (event) => Effect.flatMap(Clock.currentTimeMillis, (at) => Queue.offer(queue, { at, event })),
      }),
    ),
    Effect.ignore,
  )

interface Timed<A> {
  readonly at: number
  readonly event: A
}

interface Server {
  readonly pid: number
  readonly port: number
  readonly gauge: Gauge
  readonly events: Queue.Dequeue<Timed<ServerEvent.ServerEvent>, Cause.Done>
  readonly stderrTail: ReadonlyArray<string>
}

type ServerEventOf<T extends ServerEvent.ServerEvent["_tag"]> = Extract<ServerEvent.ServerEvent, { _tag: T }>

// Takes the server's events, handing each to `seen`, up to the first `tag`; fails if the server
// exits first, with the last lines of its stderr.
const until = <T extends ServerEvent.ServerEvent["_tag"], E = never, R = never>(
  server: Pick<Server, "events" | "stderrTail">,
  tag: T,
  seen: (event: Timed<ServerEvent.ServerEvent>) => Effect.Effect<void, E, R> = () => Effect.void,
) =>
  Effect.gen(function* () {
    while (true) {
      const next = yield* Queue.take(server.events).pipe(
        Effect.mapError(
          () => new BenchmarkFailed({ reason: `fed-server exited before ${tag}: ${server.stderrTail.join(" | ")}` }),
        ),
      )
      yield* seen(next)
      if (next.event._tag === tag) return next as Timed<ServerEventOf<T>>
    }
  })

interface ServerOptions {
  readonly model: Model.Name
  readonly clients: number
  readonly minClients: number
  readonly rounds: number
  readonly roundTimeout: string
  readonly extra?: ReadonlyArray<string>
}

const childOptions = (env: Record<string, string>) =>
  ({
    extendEnv: true,
    // The children exit when the benchmark dies, even by SIGKILL: the kernel closes this stdin.
    env: { ...env, [ParentWatch.envVar]: "1" },
    stdin: "pipe",
    stdout: "pipe",
    // A benchmark's teardown: nothing to keep, so no graceful stop.
    killSignal: "SIGKILL",
  }) as const

// Starts the server in the caller's Scope, with its state file and update spills in a temporary
// directory removed with the Scope, and returns once its job is created (MNIST loaded, no client
// yet).
const startServer = Effect.fnUntraced(function* (options: ServerOptions) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const directory = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fedguard-bench-memory-"))),
    (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true })),
  )
  const handle = yield* spawner.spawn(
    ChildProcess.make(
      process.execPath,
      [
        serverBin,
        ...["--port", "0", "--state", join(directory, "state.db"), "--model", options.model],
        ...["--expected-clients", String(options.clients), "--min-clients", String(options.minClients)],
        ...["--rounds", String(options.rounds), "--local-epochs", "1", "--local-steps", "1"],
        ...["--round-timeout", options.roundTimeout, "--join-timeout", "10m"],
        ...(options.extra ?? []),
      ],
      // Its update spills (under os.tmpdir()) go in the temporary directory too: a server killed
      // mid-round, as the stream's is, cannot remove them itself.
      { ...childOptions({ FED_SERVER_SECRET: secret, TMPDIR: directory }), stderr: "pipe" },
    ),
  )
  const serverGauge = yield* gauge(handle.pid)
  const events = yield* Queue.unbounded<Timed<ServerEvent.ServerEvent>, Cause.Done>()
  const stderrTail: Array<string> = []
  const stderr = yield* lines(handle.stderr).pipe(
    Stream.runForEach((line) =>
      Effect.sync(() => {
        stderrTail.push(line)
        if (stderrTail.length > STDERR_TAIL) stderrTail.shift()
      }),
    ),
    Effect.ignore,
    Effect.forkScoped,
  )
  yield* forwardEvents(handle.stdout, ServerEvent.fromLine, events).pipe(
    // Its stdout ends with the process: the queue ends once stderr has told why.
    Effect.ensuring(Effect.andThen(Fiber.await(stderr).pipe(Effect.timeoutOption("1 second")), Queue.end(events))),
    Effect.forkScoped,
  )
  const listening = yield* until({ events, stderrTail }, "Listening")
  yield* until({ events, stderrTail }, "JobCreated")
  return { pid: handle.pid, port: listening.event.port, gauge: serverGauge, events, stderrTail } satisfies Server
})

// The server's own RSS with MNIST loaded and its job created, before any client: the median of 1 s
// of samples, 2 s after the job was created. The garbage of its start is still in it (an idle V8
// does not collect), so it is printed, not used as the baseline.
const baselineOf = (server: Server) =>
  Effect.gen(function* () {
    yield* Effect.sleep(BASELINE_SETTLE)
    const from = yield* Clock.currentTimeMillis
    yield* Effect.sleep(BASELINE_SPAN)
    return typicalIn(server.gauge.samples, from, yield* Clock.currentTimeMillis)
  })

interface Client {
  readonly id: string
  readonly pid: number
  readonly gauge: Gauge
}

type ClientEvents = Queue.Queue<Timed<ClientEvent.ClientEvent>>

// Starts `client-<index>` in the caller's Scope; its events go to `events`.
const startClient = Effect.fnUntraced(function* (server: Server, index: number, shards: number, events: ClientEvents) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const id = `client-${index}`
  const handle = yield* spawner.spawn(
    ChildProcess.make(
      process.execPath,
      [
        clientBin,
        ...["--server", `127.0.0.1:${server.port}`, "--id", id],
        ...["--shard-index", String(index), "--shard-count", String(shards)],
      ],
      { ...childOptions({ FED_CLIENT_SECRET: secret }), stderr: "inherit" },
    ),
  )
  yield* forwardEvents(handle.stdout, ClientEvent.fromLine, events).pipe(Effect.forkScoped)
  return { id, pid: handle.pid, gauge: yield* gauge(handle.pid) } satisfies Client
})

type ClientEventOf<T extends ClientEvent.ClientEvent["_tag"]> = Extract<ClientEvent.ClientEvent, { _tag: T }>

const nextClientEvent = <T extends ClientEvent.ClientEvent["_tag"]>(events: ClientEvents, tag: T) =>
  Effect.gen(function* () {
    while (true) {
      const next = yield* Queue.take(events)
      if (next.event._tag === tag) return next as Timed<ClientEventOf<T>>
    }
  })

const withTimeout =
  (label: string, duration: Duration.Input) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.timeoutOrElse(self, {
      duration,
      orElse: () => Effect.fail(new BenchmarkFailed({ reason: `${label} did not finish within ${duration}` })),
    })

// ---------------------------------------------------------------------------------------------
// The scenarios

// The live baseline: a probe server with the fleet's flags runs a full GC on its own about 10 s
// after it starts (`--memory-threshold 1B`: the threshold is always exceeded); its RSS after that
// GC, with MNIST loaded, listening, its job created and no client, is what a server needs there.
const liveBaseline = Effect.gen(function* () {
  const probe = yield* startServer({
    model: FLEET.model,
    clients: FLEET.clients,
    minClients: FLEET.clients,
    rounds: FLEET.rounds,
    roundTimeout: "10m",
    extra: ["--memory-threshold", "1B"],
  })
  const cleaned = yield* until(probe, "MemoryCleaned")
  const from = yield* Clock.currentTimeMillis
  yield* Effect.sleep(BASELINE_SPAN)
  return {
    rss: typicalIn(probe.gauge.samples, from, yield* Clock.currentTimeMillis),
    beforeGc: cleaned.event.before.rss,
  }
}).pipe(Effect.scoped, withTimeout("the baseline probe", "1 minute"))

interface FleetResult {
  /** The server's own RSS before any client, garbage of its start included. */
  readonly ownBaseline: number
  readonly peak: number
  /** The peak of each round, from its round-started to its round-completed. */
  readonly roundPeaks: ReadonlyArray<number>
  readonly seconds: number
  readonly rounds: ReadonlyArray<ServerEventOf<"RoundCompleted">>
}

// 8 clients, 3 rounds of the 64 MiB model: the server's peak over the whole job.
const fleet = (extra: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const server = yield* startServer({
      model: FLEET.model,
      clients: FLEET.clients,
      minClients: FLEET.clients,
      rounds: FLEET.rounds,
      roundTimeout: "10m",
      extra,
    })
    const ownBaseline = yield* baselineOf(server)
    const from = yield* Clock.currentTimeMillis
    const clientEvents = yield* Queue.unbounded<Timed<ClientEvent.ClientEvent>>()
    yield* Effect.forEach(
      Array.from({ length: FLEET.clients }, (_, index) => index),
      (index) => startClient(server, index, FLEET.clients, clientEvents),
      { discard: true },
    )
    const rounds: Array<ServerEventOf<"RoundCompleted">> = []
    const windows: Array<{ readonly from: number; to: number }> = []
    const marks: Array<{ readonly at: number; readonly tag: string }> = []
    const done = yield* until(server, "TrainingCompleted", ({ at, event }) =>
      Effect.sync(() => {
        marks.push({ at, tag: event._tag })
        if (process.env.BENCH_TIMELINE === "1" && event._tag === "MemoryCleaned") console.log(JSON.stringify(event))
        if (event._tag === "RoundStarted") windows.push({ from: at, to: Number.NaN })
        if (event._tag === "RoundCompleted") {
          rounds.push(event)
          windows[windows.length - 1]!.to = at
        }
      }),
    )
    // BENCH_TIMELINE=1: the server's RSS every 250 ms with the server's and clients' events of that
    // time, to see which phase of a round holds the memory.
    if (process.env.BENCH_TIMELINE === "1") {
      const clientMarks = (yield* Queue.clear(clientEvents)).map(({ at, event }) => ({
        at,
        tag: `client:${event._tag}`,
      }))
      const all = [...marks, ...clientMarks]
      for (const sample of server.gauge.samples.filter((sample, i) => sample.at >= from && i % 5 === 0)) {
        const here = all.filter((mark) => mark.at >= sample.at && mark.at < sample.at + 250).map((mark) => mark.tag)
        console.log(
          `  ${((sample.at - from) / 1000).toFixed(2).padStart(7)} s rss ${fmtMiB(sample.rss)} ${here.join(" ")}`,
        )
      }
    }
    return {
      ownBaseline,
      peak: peakIn(server.gauge.samples, from, done.at),
      roundPeaks: windows.map((window) => peakIn(server.gauge.samples, window.from, window.to)),
      seconds: (done.at - from) / 1000,
      rounds,
    } satisfies FleetResult
  }).pipe(Effect.scoped, withTimeout("the fleet run", FLEET.timeout))

interface StreamResult {
  readonly ownBaseline: number
  /** The first sample after round-started: the server with its model initialised, before the stream. */
  readonly atRoundStart: number
  /** Peak from round-started until both clients had read the whole model. */
  readonly sendPeak: number
  readonly sendSeconds: number
  /** Peak from then to the first round-trained: both uploads streaming into spills. */
  readonly intakePeak: number
  readonly intakeSeconds: number
  /** What each client had read from the job's start to the first round-trained. */
  readonly received: ReadonlyArray<{ readonly id: string; readonly bytes: number }>
}

// The 1 GiB model streamed to 2 clients, from round-started to the first round-trained; then
// everything is stopped (see the module comment for why).
const stream = Effect.gen(function* () {
  const modelBytes = bytesOf(STREAM.model)
  const server = yield* startServer({
    model: STREAM.model,
    clients: STREAM.clients,
    minClients: STREAM.clients,
    rounds: 1,
    roundTimeout: "30m",
  })
  const ownBaseline = yield* baselineOf(server)
  const clientEvents = yield* Queue.unbounded<Timed<ClientEvent.ClientEvent>>()
  const clients = yield* Effect.forEach(
    Array.from({ length: STREAM.clients }, (_, index) => index),
    (index) => startClient(server, index, STREAM.clients, clientEvents),
  )
  // What each client had read when the job started running: the model does not exist yet (the
  // server initialises it next, over a second for 1 GiB), so what a client reads after that is
  // the server's stream (and a few heartbeat acks).
  let state = yield* until(server, "JobStateChanged")
  while (state.event.to !== "running") state = yield* until(server, "JobStateChanged")
  const readAtStart = clients.map((client) => client.gauge.samples.at(-1)?.read ?? Number.NaN)
  const started = yield* until(server, "RoundStarted")
  const trained = yield* nextClientEvent(clientEvents, "RoundTrained")
  // When each client had read the whole model (NaN if it never had: then no phase is reported).
  const readWhole = clients.map(
    (client, k) => client.gauge.samples.find((sample) => sample.read - readAtStart[k]! >= modelBytes)?.at ?? Number.NaN,
  )
  const sentAt = Math.max(...readWhole)
  return {
    ownBaseline,
    atRoundStart: inWindow(server.gauge.samples, started.at, trained.at)[0]?.rss ?? Number.NaN,
    sendPeak: peakIn(server.gauge.samples, started.at, sentAt),
    sendSeconds: (sentAt - started.at) / 1000,
    intakePeak: peakIn(server.gauge.samples, sentAt, trained.at),
    intakeSeconds: (trained.at - sentAt) / 1000,
    received: clients.map((client, k) => ({
      id: client.id,
      bytes: (client.gauge.samples.at(-1)?.read ?? Number.NaN) - readAtStart[k]!,
    })),
  } satisfies StreamResult
}).pipe(Effect.scoped, withTimeout("the 1 GiB stream", STREAM.timeout))

interface LongResult {
  readonly reconnects: number
  readonly seconds: number
  readonly server: ReadonlyMap<number, number>
  readonly clients: ReadonlyMap<string, ReadonlyMap<number, number>>
  readonly excluded: number
}

// 200 rounds of the 10 MiB model with 50 kill-and-restart cycles; the RSS of the server and of
// each client id at the reported rounds.
const long = Effect.gen(function* () {
  const parent = yield* Effect.scope
  const server = yield* startServer({
    model: LONG.model,
    clients: LONG.clients,
    minClients: LONG.minClients,
    rounds: LONG.rounds,
    roundTimeout: "60s",
  })
  const clientEvents = yield* Queue.unbounded<Timed<ClientEvent.ClientEvent>>()
  // Every process each id had, in order, with the Scope that stops it.
  const processes = new Map<string, Array<{ readonly client: Client; readonly scope: Scope.Closeable }>>()
  const launch = Effect.fnUntraced(function* (index: number) {
    const scope = yield* Scope.fork(parent)
    const client = yield* startClient(server, index, LONG.clients, clientEvents).pipe(Scope.provide(scope))
    processes.set(client.id, [...(processes.get(client.id) ?? []), { client, scope }])
  })
  const start = yield* Clock.currentTimeMillis
  for (let index = 0; index < LONG.clients; index++) yield* launch(index)

  const candidates = Array.from({ length: LONG.rounds - LONG.firstKillAfter }, (_, i) => LONG.firstKillAfter + i)
  const killRounds = new Set((yield* Random.shuffle(candidates)).slice(0, LONG.reconnects))
  const online = new Set<string>()
  const started = new Map<number, number>()
  const completed = new Map<number, number>()
  let due = 0
  let reconnects = 0
  let excluded = 0

  const onEvent = ({ at, event }: Timed<ServerEvent.ServerEvent>) =>
    Effect.gen(function* () {
      switch (event._tag) {
        case "ClientJoined":
        case "ClientRejoined":
          online.add(event.id)
          return
        case "ClientWentOffline":
        case "ClientLeft":
          online.delete(event.id)
          return
        case "RoundStarted":
          started.set(event.round, at)
          return
        case "RoundCompleted":
          completed.set(event.round, at)
          excluded += event.excluded.length
          if (killRounds.has(event.round)) due++
          if (event.round % 20 === 0) {
            const rss = typicalIn(server.gauge.samples, started.get(event.round)!, at)
            yield* Effect.sync(() =>
              console.log(`  round ${event.round}: server ${fmtMiB(rss)} MiB, ${reconnects} reconnect cycles so far`),
            )
          }
          // One client down at a time: a kill waits while a restarted client has not rejoined.
          if (due > 0 && online.size === LONG.clients) {
            const victim = yield* Random.choice(LONG.victims)
            const current = processes.get(victim)!.at(-1)!
            yield* Scope.close(current.scope, Exit.void)
            online.delete(victim)
            yield* launch(Number(victim.slice("client-".length)))
            due--
            reconnects++
          }
          return
        default:
          return
      }
    })
  const done = yield* until(server, "TrainingCompleted", onEvent)

  const window = (round: number) => [started.get(round) ?? Number.NaN, completed.get(round) ?? Number.NaN] as const
  const serverAt = new Map(LONG.reported.map((round) => [round, typicalIn(server.gauge.samples, ...window(round))]))
  const clientsAt = new Map(
    [...processes].map(([id, lives]) => {
      const samples = lives.flatMap((life) => life.client.gauge.samples)
      return [id, new Map(LONG.reported.map((round) => [round, typicalIn(samples, ...window(round))]))] as const
    }),
  )
  return {
    reconnects,
    seconds: (done.at - start) / 1000,
    server: serverAt,
    clients: clientsAt,
    excluded,
  } satisfies LongResult
}).pipe(Effect.scoped, Random.withSeed(LONG.seed), withTimeout("the long run", LONG.timeout))

// ---------------------------------------------------------------------------------------------
// Reporting

const fmtMiB = (bytes: number) => (bytes / MiB).toFixed(1)
const round1 = (value: number) => Number(value.toFixed(1))
const met = (ok: boolean) => (ok ? "met" : "NOT met")

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n")
}

const machine = () =>
  `node ${process.version}, ${availableParallelism()} cores, ${(totalmem() / 1024 / MiB).toFixed(1)} GiB`

const describeFleet = (label: string, result: FleetResult) => {
  const updates = result.rounds.map((round) => `${round.participants.length}`).join("/")
  console.log(
    `${label}: own RSS before any client ${fmtMiB(result.ownBaseline)} MiB, peak ${fmtMiB(result.peak)} MiB (per round: ${result.roundPeaks.map(fmtMiB).join(", ")}), ${result.rounds.length} rounds (updates averaged per round: ${updates}), ${result.seconds.toFixed(1)} s`,
  )
}

const defaultMode = Effect.gen(function* () {
  const modelBytes = bytesOf(FLEET.model)
  const streamBytes = bytesOf(STREAM.model)
  console.log(
    `memory benchmark: fed-server and fed-client processes on 127.0.0.1, /proc read every ${SAMPLE_EVERY}; ${machine()}`,
  )
  console.log(
    `fleet: ${FLEET.model} (${fmtMiB(modelBytes)} MiB float32), ${FLEET.clients} clients, ${FLEET.rounds} rounds, --local-steps 1; stream: ${STREAM.model} (${fmtMiB(streamBytes)} MiB) to ${STREAM.clients} clients`,
  )
  const baseline = yield* liveBaseline
  console.log(
    `baseline: ${fmtMiB(baseline.rss)} MiB after the probe server's full GC (${fmtMiB(baseline.beforeGc)} MiB before it)`,
  )
  const plain = yield* fleet(process.env.BENCH_FLEET_FLAGS?.split(" ") ?? [])
  describeFleet("fleet, defaults", plain)
  if (process.env.BENCH_FLEET_ONLY === "1") return
  const cleaned = yield* fleet(["--memory-cleanup-rounds", "1"])
  describeFleet("fleet, --memory-cleanup-rounds 1", cleaned)
  const streamed = yield* stream
  console.log(
    `stream: own RSS before any client ${fmtMiB(streamed.ownBaseline)} MiB, ${fmtMiB(streamed.atRoundStart)} MiB at round-started (model initialised); send to both clients ${streamed.sendSeconds.toFixed(1)} s, peak ${fmtMiB(streamed.sendPeak)} MiB; then uploads in ${streamed.intakeSeconds.toFixed(1)} s, peak ${fmtMiB(streamed.intakePeak)} MiB; read by each client by then: ${streamed.received.map((client) => `${client.id} ${fmtMiB(client.bytes)} MiB`).join(", ")}`,
  )

  const target = TARGETS.fleetModelSizes * modelBytes + TARGETS.fleetSlackMiB * MiB
  const above = (result: FleetResult) => result.peak - baseline.rss
  const sizes = (bytes: number) => `${(bytes / modelBytes).toFixed(2)} model sizes`
  const holdAll = FLEET.clients * modelBytes
  const sendAbove = streamed.sendPeak - baseline.rss - streamBytes
  const intakeAbove = streamed.intakePeak - baseline.rss - streamBytes
  const streamTarget = TARGETS.streamAboveModelMiB * MiB
  console.log(
    table(
      ["figure", "measured", "target", "met"],
      [
        [
          `server peak RSS above baseline, ${FLEET.clients} clients × 64 MiB, ${FLEET.rounds} rounds`,
          `${fmtMiB(above(plain))} MiB = ${sizes(above(plain))}`,
          `≤ ${fmtMiB(target)} MiB (3 model sizes + 64 MiB)`,
          met(above(plain) <= target),
        ],
        [
          "the same with --memory-cleanup-rounds 1",
          `${fmtMiB(above(cleaned))} MiB = ${sizes(above(cleaned))}`,
          `≤ ${fmtMiB(target)} MiB`,
          met(above(cleaned) <= target),
        ],
        [
          `holding every update (${FLEET.clients} × 64 MiB, without the global model)`,
          `${fmtMiB(holdAll)} MiB = ${sizes(holdAll)}`,
          "reference",
          "",
        ],
        [
          `1 GiB model sent to ${STREAM.clients} clients: server peak above baseline + model`,
          `${fmtMiB(sendAbove)} MiB (${fmtMiB(streamed.sendPeak - streamed.atRoundStart)} above round-started)`,
          `≤ ${TARGETS.streamAboveModelMiB} MiB`,
          Number.isNaN(sendAbove) ? "n/a: a client never read the whole model" : met(sendAbove <= streamTarget),
        ],
        [
          `then both 1 GiB uploads into spills: server peak above baseline + model`,
          `${fmtMiB(intakeAbove)} MiB (${fmtMiB(streamed.intakePeak - streamed.atRoundStart)} above round-started)`,
          `(≤ ${TARGETS.streamAboveModelMiB} MiB)`,
          Number.isNaN(intakeAbove) ? "n/a" : met(intakeAbove <= streamTarget),
        ],
      ],
    ),
  )
  console.log(
    JSON.stringify({
      bench: "memory",
      clients: FLEET.clients,
      modelMiB: Math.round(modelBytes / MiB),
      serverPeakAboveBaselineMiB: round1(above(plain) / MiB),
      holdAllUpdatesMiB: round1(holdAll / MiB),
      stream1GiBAboveModelMiB: round1(sendAbove / MiB),
      baselineMiB: round1(baseline.rss / MiB),
      serverPeakWithCleanupAboveBaselineMiB: round1(above(cleaned) / MiB),
      uploads1GiBAboveModelMiB: round1(intakeAbove / MiB),
    }),
  )
})

const longMode = Effect.gen(function* () {
  const modelBytes = bytesOf(LONG.model)
  console.log(
    `memory benchmark, long: fed-server and ${LONG.clients} fed-clients, ${LONG.model} (${fmtMiB(modelBytes)} MiB float32), ${LONG.rounds} rounds, --local-steps 1, ${LONG.reconnects} kill-and-restart cycles (seed "${LONG.seed}"); ${machine()}`,
  )
  const result = yield* long
  console.log(
    `${result.reconnects} reconnect cycles, ${result.excluded} exclusions from rounds, ${result.seconds.toFixed(0)} s`,
  )
  const [early, last] = [LONG.early, LONG.rounds]
  const rows = [
    ["fed-server", result.server] as const,
    ...[...result.clients].sort(([a], [b]) => a.localeCompare(b)).map(([id, at]) => [id, at] as const),
  ]
  const ratioOf = (at: ReadonlyMap<number, number>) => at.get(last)! / at.get(early)!
  console.log(
    table(
      ["process", ...LONG.reported.map((round) => `round ${round} MiB`), `${last} / ${early}`, "target ≤ 1.2"],
      rows.map(([name, at]) => {
        const measured = name === "fed-server" || name === LONG.witness
        return [
          name === LONG.witness ? `${name} (never killed)` : name === "fed-server" ? name : `${name} (restarted)`,
          ...LONG.reported.map((round) => fmtMiB(at.get(round)!)),
          ratioOf(at).toFixed(3),
          measured ? met(ratioOf(at) <= TARGETS.longRatio) : "n/a: not the same process",
        ]
      }),
    ),
  )
  const witness = result.clients.get(LONG.witness)!
  console.log(
    JSON.stringify({
      bench: "memory",
      mode: "long",
      clients: LONG.clients,
      modelMiB: round1(modelBytes / MiB),
      rounds: LONG.rounds,
      reconnects: result.reconnects,
      serverRound20MiB: round1(result.server.get(early)! / MiB),
      serverRound200MiB: round1(result.server.get(last)! / MiB),
      serverRatio: Number(ratioOf(result.server).toFixed(3)),
      clientRound20MiB: round1(witness.get(early)! / MiB),
      clientRound200MiB: round1(witness.get(last)! / MiB),
      clientRatio: Number(ratioOf(witness).toFixed(3)),
    }),
  )
})

NodeRuntime.runMain((process.argv.includes("--long") ? longMode : defaultMode).pipe(Effect.provide(NodeServices.layer)))
