/**
 * What the demo's process tests share: the built demo, short heartbeat and round timeouts, a fresh
 * report path, and a run of a program to its end with every line of its output.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Report } from "@fedguard/app-kit"
import { Effect, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

export const demoBin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

/** Heartbeats every 200 ms, offline after 1 s, rounds of at most 10 s. */
export const fast = ["--heartbeat-interval", "200ms", "--heartbeat-timeout", "1s", "--round-timeout", "10s"]

/** A report path in a fresh temporary directory. */
export const reportPath = () => join(mkdtempSync(join(tmpdir(), "fedguard-demo-")), "report.json")

export const readReport = (path: string) =>
  Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(path, "utf8")))

export const lines = <E>(bytes: Stream.Stream<Uint8Array, E>) =>
  bytes.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runCollect,
    Effect.map((all) => Array.from(all)),
  )

/** Runs a program to its end: exit code and every line of stdout and stderr. */
export const runToEnd = (bin: string, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const child = yield* spawner.spawn(
      ChildProcess.make(process.execPath, [bin, ...args], { stdout: "pipe", stderr: "pipe" }),
    )
    const [stdout, stderr, code] = yield* Effect.all([lines(child.stdout), lines(child.stderr), child.exitCode], {
      concurrency: "unbounded",
    })
    return { code: Number(code), stdout, stderr }
  }).pipe(Effect.scoped)

/** Runs the demo to its end: exit code and every line of stdout and stderr. */
export const runDemo = (args: ReadonlyArray<string>) => runToEnd(demoBin, args)
