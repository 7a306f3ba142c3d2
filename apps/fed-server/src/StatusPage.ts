/**
 * The live status page (`--status-port`): a read-only web page, served with
 * `effect/http` on Node, that shows the run as it goes: every client with
 * its liveness state and last-seen age, the current round (pending,
 * accepted, excluded with reasons), accuracy and loss per round as a chart,
 * the quorum, stalls, cleanups, each client's latest diagnostics and the
 * settings. It is the HTML report's page (`ReportHtml`), fed live.
 *
 * Routes (GET only):
 *
 * - `/`: the page's shell (markup, Chart.js, the script): no run data, so
 *   it needs no token;
 * - `/events`: Server-Sent Events, one `RunView` (JSON) per `data:` line,
 *   after each server event and every second (last-seen ages move);
 * - `/view`: the current `RunView` as JSON.
 *
 * With a token (`--status-token`, required when the page is bound to a
 * non-loopback address), `/events` and `/view` answer 401 unless the request
 * carries `Authorization: Bearer <token>`, compared in constant time. The
 * page takes the token from its address's fragment (`#token=…`, which
 * browsers never send to the server) and sends it in that header; the token
 * is never written into the page, a URL or a log line.
 *
 * @since 0.4.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { ReportHtml, Settings } from "@fedguard/app-kit"
import { Deferred, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { HttpRouter, HttpServer, type HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ClientLiveness } from "./ClientLiveness.ts"
import * as RunRecorder from "./RunRecorder.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * The settings of the page and of the HTML report, spread into
 * `ServerSettings`: `--status-port` (none: no page), `--status-host`
 * (default 127.0.0.1), `--status-token` (a secret of at least 16
 * characters, redacted everywhere; required off loopback, see
 * {@link tokenRule}) and `--report-html FILE`.
 *
 * @since 0.4.0
 * @category settings
 */
export const fields = {
  statusPort: Schema.optionalKey(Settings.int(0, 65535)),
  statusHost: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1, { message: "must not be empty" })),
    Schema.withDecodingDefaultKey(Effect.succeed("127.0.0.1")),
  ),
  statusToken: Schema.optionalKey(
    Schema.RedactedFromValue(
      Schema.String.pipe(Schema.check(Schema.isMinLength(16, { message: "must be at least 16 characters" }))),
    ),
  ),
  reportHtml: Schema.optionalKey(Settings.OutputFile),
}

/**
 * The `--help` lines of {@link fields}.
 *
 * @since 0.4.0
 * @category settings
 */
export const descriptions = {
  statusPort:
    "Serve the live status page at http://HOST:PORT/ (Server-Sent Events); 0 picks a free port (default: no page)",
  statusHost: "Address the status page binds (default 127.0.0.1; any other needs --status-token)",
  statusToken:
    "Bearer token the status page's data requires (>= 16 characters; open the page as http://HOST:PORT/#token=TOKEN); required off loopback",
  reportHtml:
    "Write a self-contained HTML report (charts, liveness timeline, settings, events) to this file at the end",
} as const

/**
 * The page's settings, as `ServerSettings` decodes them.
 *
 * @since 0.4.0
 * @category settings
 */
export type StatusSettings = Schema.Struct.Type<typeof fields>

/**
 * The rule that a page bound off loopback has a token: run data is not
 * served to a network without one.
 *
 * @since 0.4.0
 * @category settings
 */
export const tokenRule = Settings.rule<StatusSettings>("statusToken", "statusHost", (settings, flag) =>
  settings.statusPort === undefined || settings.statusToken !== undefined || isLoopback(settings.statusHost)
    ? undefined
    : `${flag("statusToken")} is required when ${flag("statusHost")} (${settings.statusHost}) is not a loopback address: the page would show the run to anyone who can reach it`,
)

/**
 * The page's options from the settings; none when `--status-port` is not
 * given.
 *
 * @since 0.4.0
 * @category settings
 */
export const options = (settings: StatusSettings): Options | undefined =>
  settings.statusPort === undefined
    ? undefined
    : { host: settings.statusHost, port: settings.statusPort, token: settings.statusToken }

/**
 * Where the page listens and who may read it: `host` (fed-server's default
 * 127.0.0.1), `port` (0 picks a free one; `StatusPageListening` says which)
 * and the optional bearer `token`.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly host: string
  readonly port: number
  readonly token?: Redacted.Redacted<string> | undefined
  /** How often the stream repeats the view when nothing happens (default 1 s). */
  readonly refreshMillis?: number | undefined
}

/**
 * The page could not be served: its port could not be bound, or its shell
 * could not be built (Chart.js could not be read).
 *
 * @since 0.4.0
 * @category errors
 */
export class StatusPageFailed extends Schema.TaggedError<StatusPageFailed>()("StatusPageFailed", {
  reason: Schema.String,
}) {
  override get message(): string {
    return this.reason
  }
}

/**
 * Whether `host` is a loopback address (`127.0.0.0/8`, `::1`,
 * `localhost`): a page bound anywhere else needs a token.
 *
 * @since 0.4.0
 * @category models
 */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(host)

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/**
 * Whether `header` (an `Authorization` header value, if any) is
 * `Bearer <token>`. Both sides are hashed first, so the comparison takes the
 * same time whatever the header's length or content.
 *
 * @since 0.4.0
 * @category auth
 */
export const authorizes = (token: Redacted.Redacted<string>, header: string | undefined): boolean =>
  timingSafeEqual(digest(header ?? ""), digest(`Bearer ${Redacted.value(token)}`))

const noStore = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const

const unauthorized = HttpServerResponse.text("unauthorized: send Authorization: Bearer <token>\n", {
  status: 401,
  headers: { ...noStore, "www-authenticate": 'Bearer realm="fedguard status"' },
})

const encoder = new TextEncoder()

// The page's routes, with the recorder and the shell captured when the page starts.
const routes = (options: Options, shell: string, stopping: Deferred.Deferred<void>) =>
  Effect.gen(function* () {
    const recorder = yield* RunRecorder.RunRecorder
    const guarded =
      (respond: Effect.Effect<HttpServerResponse.HttpServerResponse>) =>
      (request: HttpServerRequest.HttpServerRequest) =>
        options.token === undefined || authorizes(options.token, request.headers.authorization)
          ? respond
          : Effect.succeed(unauthorized)
    const views = Stream.merge(recorder.changes, Stream.tick(options.refreshMillis ?? 1000)).pipe(
      Stream.mapEffect(() => recorder.view),
      Stream.map((view) => encoder.encode(`data: ${JSON.stringify(view)}\n\n`)),
      Stream.interruptWhen(Deferred.await(stopping)),
    )
    return [
      HttpRouter.route("GET", "/", HttpServerResponse.html(shell).pipe(HttpServerResponse.setHeaders(noStore))),
      HttpRouter.route(
        "GET",
        "/events",
        guarded(
          Effect.succeed(
            HttpServerResponse.stream(views, {
              contentType: "text/event-stream",
              headers: { ...noStore, "x-accel-buffering": "no" },
            }),
          ),
        ),
      ),
      HttpRouter.route(
        "GET",
        "/view",
        guarded(
          Effect.map(recorder.view, (view) =>
            HttpServerResponse.text(JSON.stringify(view), { contentType: "application/json", headers: noStore }),
          ),
        ),
      ),
    ] as const
  })

// Publishes where the page is once the server has said `Listening` (always its first event).
const announce = (options: Options) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const events = yield* ServerEvents
      const server = yield* HttpServer.HttpServer
      // The page's own address (a port of 0 is the bound one); never the token.
      const url = `${HttpServer.formatAddress(server.address)}/`
      const subscription = yield* events.subscribe
      yield* subscription.pipe(
        Stream.filter((event) => event._tag === "Listening"),
        Stream.runHead,
        Effect.andThen(
          events.publish(new ServerEvent.StatusPageListening({ url, authenticated: options.token !== undefined })),
        ),
        Effect.forkScoped,
      )
    }),
  )

/**
 * Serves the page for as long as the Layer's Scope is open. Request logs
 * and the listen log are off: every line fed-server prints is one of its
 * events.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<never, StatusPageFailed, RunRecorder.RunRecorder | ServerEvents> => {
  const where = `${options.host}:${options.port}`
  const server = Layer.effectContext(
    Layer.build(NodeHttpServer.layer(createServer, { host: options.host, port: options.port })).pipe(
      Effect.mapError(
        (error) => new StatusPageFailed({ reason: `cannot serve the status page on ${where}: ${String(error.cause)}` }),
      ),
    ),
  )
  return Layer.unwrap(
    Effect.gen(function* () {
      // Node's file system, from the HTTP server's platform layer.
      const library = yield* ReportHtml.chartLibrary.pipe(
        Effect.mapError((error) => new StatusPageFailed({ reason: `cannot build the status page: ${error.message}` })),
      )
      const shell = ReportHtml.page({ title: "fedguard status", chartLibrary: library })
      // Open event streams end when the page stops. The HTTP server stops serving by waiting for
      // every response to end (up to a 20 s grace) before it interrupts them, so a browser left
      // open would hold the server's exit: this finalizer, built after the server and so run
      // before its own, ends them first.
      const stopping = yield* Deferred.make<void>()
      const app = HttpRouter.addAll(routes(options, shell, stopping))
      const serving = HttpRouter.serve(app, { disableLogger: true, disableListenLog: true })
      const stopStreams = Layer.effectDiscard(Effect.addFinalizer(() => Deferred.succeed(stopping, undefined)))
      return Layer.mergeAll(stopStreams.pipe(Layer.provide(serving)), announce(options))
    }),
  ).pipe(Layer.provide(server))
}

/**
 * What watches the run: the `RunRecorder` (always: the HTML report reads
 * it) and, with `--status-port`, the page serving it.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerWatching = (
  settings: StatusSettings,
  recorder: RunRecorder.Options,
): Layer.Layer<RunRecorder.RunRecorder, StatusPageFailed, ServerEvents | ClientLiveness> => {
  const page = options(settings)
  const recording = RunRecorder.layer(recorder)
  return page === undefined ? recording : layer(page).pipe(Layer.provideMerge(recording))
}
