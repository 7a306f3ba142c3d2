import { createServer } from "node:net"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RunView, Settings } from "@fedguard/app-kit"
import { Effect, Exit, Layer, Option, Redacted, Schema, Scope, Stream } from "effect"
import * as RunRecorder from "../src/RunRecorder.ts"
import * as ServerEvent from "../src/ServerEvent.ts"
import * as ServerEvents from "../src/ServerEvents.ts"
import * as ServerSettings from "../src/ServerSettings.ts"
import * as StatusPage from "../src/StatusPage.ts"

const token = "a-token-of-16-chars-or-more"

const view: RunView.RunView = {
  ...RunView.empty("job", 1_000),
  clients: [
    { id: "client-with-a-name", state: "online", lastSeenAt: 1_000, spans: [{ from: 1_000, to: null }], marks: [] },
  ],
}

const recorder = Layer.succeed(RunRecorder.RunRecorder, { view: Effect.succeed(view), changes: Stream.make(undefined) })

// Starts the page on a free port and returns its address, from `StatusPageListening` (which
// follows `Listening`, as in the server).
const started = (options: Omit<StatusPage.Options, "host" | "port">) =>
  Effect.gen(function* () {
    // Built in the test's Scope: the page serves until the test ends.
    const context = yield* Layer.build(
      StatusPage.layer({ host: "127.0.0.1", port: 0, ...options }).pipe(
        Layer.provideMerge(Layer.mergeAll(recorder, ServerEvents.layer)),
      ),
    )
    return yield* Effect.gen(function* () {
      const events = yield* ServerEvents.ServerEvents
      const subscription = yield* events.subscribe
      yield* events.publish(new ServerEvent.Listening({ host: "127.0.0.1", port: 1 }))
      const announced = yield* subscription.pipe(
        Stream.filter((event): event is ServerEvent.StatusPageListening => event._tag === "StatusPageListening"),
        Stream.runHead,
      )
      assert.isTrue(Option.isSome(announced), "StatusPageListening follows Listening")
      return Option.getOrThrow(announced)
    }).pipe(Effect.provideContext(context), Effect.scoped)
  })

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(() =>
    fetch(url, { headers }).then((response) => response.text().then((body) => ({ status: response.status, body }))),
  )

// The first Server-Sent Event of `url`, decoded as a view; the request is aborted with the Scope.
const firstEvent = (url: string, headers: Record<string, string> = {}): Effect.Effect<unknown, never, Scope.Scope> =>
  Effect.gen(function* () {
    const abort = yield* Effect.acquireRelease(
      Effect.sync(() => new AbortController()),
      (controller) => Effect.sync(() => controller.abort()),
    )
    const response = yield* Effect.promise(() => fetch(url, { headers, signal: abort.signal }))
    assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes("\n\n")) {
      const chunk = yield* Effect.promise(() => reader.read())
      if (chunk.done) break
      text += decoder.decode(chunk.value, { stream: true })
    }
    return JSON.parse(text.slice("data: ".length, text.indexOf("\n\n")))
  })

describe("StatusPage", () => {
  it.live("serves the page's shell without run data, and the view as JSON and as Server-Sent Events", () =>
    Effect.gen(function* () {
      const { url, authenticated } = yield* started({})
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
      assert.isFalse(authenticated)
      const shell = yield* get(url)
      assert.strictEqual(shell.status, 200)
      assert.include(shell.body, '<canvas id="rounds-chart"')
      assert.include(shell.body, "Chart.js v4")
      assert.notInclude(shell.body, "client-with-a-name")
      const json = yield* get(`${url}view`)
      assert.strictEqual(json.status, 200)
      assert.deepStrictEqual(Schema.decodeUnknownSync(RunView.RunView)(JSON.parse(json.body)), view)
      const streamed = yield* firstEvent(`${url}events`)
      assert.deepStrictEqual(Schema.decodeUnknownSync(RunView.RunView)(streamed), view)
    }).pipe(Effect.scoped),
  )

  it.live("with a token, answers 401 to a request without it or with another one, and 200 with it", () =>
    Effect.gen(function* () {
      const { url, authenticated } = yield* started({ token: Redacted.make(token) })
      assert.isTrue(authenticated)
      assert.notInclude(url, token)
      for (const headers of [{}, { authorization: `Bearer ${token}x` }, { authorization: token }]) {
        const refused = yield* get(`${url}view`, headers)
        assert.strictEqual(refused.status, 401)
        assert.notInclude(refused.body, "client-with-a-name")
        assert.strictEqual((yield* get(`${url}events`, headers)).status, 401)
      }
      const allowed = yield* get(`${url}view`, { authorization: `Bearer ${token}` })
      assert.strictEqual(allowed.status, 200)
      assert.include(allowed.body, "client-with-a-name")
      const streamed = yield* firstEvent(`${url}events`, { authorization: `Bearer ${token}` })
      assert.deepStrictEqual(Schema.decodeUnknownSync(RunView.RunView)(streamed), view)
      // The shell is public and holds neither data nor the token.
      const shell = yield* get(url)
      assert.strictEqual(shell.status, 200)
      assert.notInclude(shell.body, token)
    }).pipe(Effect.scoped),
  )

  it.live("ends its open event streams when it stops: a browser left open does not hold the server's exit", () =>
    Effect.gen(function* () {
      const page = yield* Scope.make()
      const { url } = yield* started({}).pipe(Scope.provide(page))
      const response = yield* Effect.promise(() => fetch(`${url}events`))
      const reader = response.body!.getReader()
      yield* Effect.promise(() => reader.read())
      // Stopping the page (its Scope) must end the response, not wait out the HTTP server's grace
      // period (20 s); 5 s bounds the wait, far below it.
      yield* Scope.close(page, Exit.void).pipe(Effect.timeout("5 seconds"))
      const drained = Effect.promise(() => reader.read()).pipe(
        Effect.repeat({ until: (chunk) => chunk.done }),
        Effect.timeout("5 seconds"),
      )
      assert.isTrue((yield* drained).done)
    }),
  )

  it.live("is read-only: a POST is not served", () =>
    Effect.gen(function* () {
      const { url } = yield* started({})
      const posted = yield* Effect.promise(() => fetch(`${url}view`, { method: "POST", body: "{}" }))
      assert.notStrictEqual(posted.status, 200)
      assert.isAtLeast(posted.status, 400)
    }).pipe(Effect.scoped),
  )

  it.live("fails with StatusPageFailed naming the address when the port is taken", () =>
    Effect.gen(function* () {
      const taken = yield* Effect.acquireRelease(
        Effect.callback<ReturnType<typeof createServer>>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))),
      )
      const port = (taken.address() as { port: number }).port
      const error = yield* Effect.flip(
        Layer.build(
          StatusPage.layer({ host: "127.0.0.1", port }).pipe(
            Layer.provide(Layer.mergeAll(recorder, ServerEvents.layer)),
          ),
        ),
      )
      assert.strictEqual(error._tag, "StatusPageFailed")
      assert.include(error.message, `127.0.0.1:${port}`)
    }).pipe(Effect.scoped),
  )

  it("compares tokens exactly: a prefix, a longer value or another scheme does not authorize", () => {
    const secret = Redacted.make(token)
    assert.isTrue(StatusPage.authorizes(secret, `Bearer ${token}`))
    assert.isFalse(StatusPage.authorizes(secret, `Bearer ${token.slice(0, -1)}`))
    assert.isFalse(StatusPage.authorizes(secret, `Bearer ${token}0`))
    assert.isFalse(StatusPage.authorizes(secret, `Basic ${token}`))
    assert.isFalse(StatusPage.authorizes(secret, undefined))
  })

  it("knows loopback addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert.isTrue(StatusPage.isLoopback(host), host)
    for (const host of ["0.0.0.0", "10.0.0.1", "::", "example.org", "128.0.0.1"]) {
      assert.isFalse(StatusPage.isLoopback(host), host)
    }
  })
})

const server = (flags: Record<string, string>) =>
  Settings.loadFlags(ServerSettings.ServerSettings, "FED_SERVER_", { secret: "long-enough", ...flags }).pipe(
    Effect.provide(NodeServices.layer),
  )

describe("status page settings", () => {
  it.effect("refuse a page bound off loopback without a token, and accept it with one or on loopback", () =>
    Effect.gen(function* () {
      const refused = yield* Effect.flip(server({ statusPort: "0", statusHost: "0.0.0.0" }))
      assert.include(refused.message, "--status-token is required when --status-host (0.0.0.0)")
      const withToken = yield* server({ statusPort: "0", statusHost: "0.0.0.0", statusToken: token })
      assert.strictEqual(Redacted.value(withToken.statusToken!), token)
      const loopback = yield* server({ statusPort: "0" })
      assert.strictEqual(loopback.statusHost, "127.0.0.1")
      // No page, no rule: a host alone serves nothing.
      yield* server({ statusHost: "0.0.0.0" })
    }),
  )

  it.effect("refuse a token shorter than 16 characters", () =>
    Effect.gen(function* () {
      const refused = yield* Effect.flip(server({ statusPort: "0", statusToken: "short" }))
      assert.include(refused.message, "at least 16 characters")
    }),
  )

  it.effect("never put the token in the report's settings", () =>
    Effect.gen(function* () {
      const settings = yield* server({ statusPort: "0", statusHost: "0.0.0.0", statusToken: token })
      const config = ServerSettings.reportConfig(settings)
      assert.strictEqual(config.statusToken, "<redacted>")
      assert.notInclude(JSON.stringify(config), token)
    }),
  )
})
