/**
 * A Linux network namespace joined to the host by a veth pair, for the
 * `partition` scenario: a client started inside it reaches the server only
 * through the pair, so taking the host end down (`ip link set … down`)
 * silences it without closing its socket (no FIN, no RST), and bringing it
 * up lets its TCP retransmit. `tc netem` is not needed (and does not work on
 * these machines).
 *
 * Needs root (CAP_NET_ADMIN) and the `ip` command; without them `make`
 * fails with `NamespaceUnavailable`, and the scenario is skipped with that
 * message. Everything is removed when the Scope closes.
 *
 * @since 0.1.0
 */
import { Effect, Schema, type Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

/**
 * The machine cannot create the namespace or the veth pair: the command that
 * failed and what it said.
 *
 * @since 0.1.0
 * @category errors
 */
export class NamespaceUnavailable extends Schema.TaggedError<NamespaceUnavailable>()("NamespaceUnavailable", {
  command: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot create a network namespace (\`${this.command}\`: ${this.reason}); the partition scenario needs root and iproute2`
  }
}

/**
 * A namespace `name` whose end of the pair has `clientAddress`, reaching the
 * host at `hostAddress`; `down` and `up` switch the host end.
 *
 * @since 0.1.0
 * @category models
 */
export interface Netns {
  readonly name: string
  readonly hostAddress: string
  readonly clientAddress: string
  readonly down: Effect.Effect<void, NamespaceUnavailable>
  readonly up: Effect.Effect<void, NamespaceUnavailable>
}

const ip = (
  args: ReadonlyArray<string>,
): Effect.Effect<void, NamespaceUnavailable, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const command = `ip ${args.join(" ")}`
    const failed = (reason: string) => new NamespaceUnavailable({ command, reason })
    const handle = yield* spawner
      .spawn(ChildProcess.make("ip", args, { stdout: "ignore", stderr: "pipe" }))
      .pipe(Effect.mapError((error) => failed(error.message)))
    const stderr = yield* handle.stderr.pipe(
      Stream.decodeText(),
      Stream.mkString,
      Effect.orElseSucceed(() => ""),
    )
    const code = yield* handle.exitCode.pipe(Effect.mapError((error) => failed(error.message)))
    if (Number(code) !== 0) return yield* failed(stderr.trim() || `exit code ${code}`)
  }).pipe(Effect.scoped)

/**
 * Creates namespace `fgchaos-<tag>` with a veth pair on the /30 subnet
 * `10.213.<octet>.0` (host `.1`, namespace `.2`), both ends up, and removes
 * them when the Scope closes. `tag` keeps concurrent campaigns apart.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  tag: number,
): Effect.Effect<Netns, NamespaceUnavailable, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function* () {
    const name = `fgchaos-${tag}`
    // Interface names are at most 15 characters.
    const hostEnd = `fgc${tag % 100000}h`
    const clientEnd = `fgc${tag % 100000}c`
    const octet = tag % 250
    const hostAddress = `10.213.${octet}.1`
    const clientAddress = `10.213.${octet}.2`
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const quietly = (args: ReadonlyArray<string>) =>
      ip(args).pipe(Effect.ignore, Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner))
    // Leftovers of a campaign that was killed before its finalizers ran.
    yield* quietly(["link", "del", hostEnd])
    yield* quietly(["netns", "del", name])
    yield* Effect.acquireRelease(ip(["netns", "add", name]), () => quietly(["netns", "del", name]))
    yield* Effect.acquireRelease(ip(["link", "add", hostEnd, "type", "veth", "peer", "name", clientEnd]), () =>
      quietly(["link", "del", hostEnd]),
    )
    yield* ip(["link", "set", clientEnd, "netns", name])
    yield* ip(["addr", "add", `${hostAddress}/30`, "dev", hostEnd])
    yield* ip(["link", "set", hostEnd, "up"])
    yield* ip(["netns", "exec", name, "ip", "addr", "add", `${clientAddress}/30`, "dev", clientEnd])
    yield* ip(["netns", "exec", name, "ip", "link", "set", clientEnd, "up"])
    yield* ip(["netns", "exec", name, "ip", "link", "set", "lo", "up"])
    const provided = <A>(effect: Effect.Effect<A, NamespaceUnavailable, ChildProcessSpawner.ChildProcessSpawner>) =>
      effect.pipe(Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner))
    return {
      name,
      hostAddress,
      clientAddress,
      down: provided(ip(["link", "set", hostEnd, "down"])),
      up: provided(ip(["link", "set", hostEnd, "up"])),
    } satisfies Netns
  })
