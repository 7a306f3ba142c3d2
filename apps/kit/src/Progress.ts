/**
 * Progress bars for long transfers, in a terminal only: when stdout is a TTY
 * and a transfer is longer than {@link minBytes} (1 MiB), a bar per transfer
 * (cli-progress's `MultiBar`) follows its acknowledged bytes, and the JSON
 * event lines are printed above the bars. When stdout is not a TTY (a pipe,
 * a file, the demo, CI) nothing changes: the same JSON lines, no bar.
 *
 * Code that moves bytes wraps the transfer in {@link tracked} and feeds it
 * the transport's progress (`sendBytes`' `onProgress`); which renderer runs
 * is a `Context.Reference` ({@link TransferProgress}), silent unless an app
 * provides {@link layerTerminal}, so services need no new requirement.
 *
 * @since 0.4.0
 */
import { MultiBar, type SingleBar } from "cli-progress"
import { Context, Effect, Layer, Logger, type Scope } from "effect"
import { formatter } from "./EventLog.ts"

/**
 * Transfers of at most this many bytes (1 MiB) get no bar: they are over
 * before a bar would say anything.
 *
 * @since 0.4.0
 * @category models
 */
export const minBytes = 1024 * 1024

/**
 * One transfer's bar: `advance(bytes)` sets the bytes done so far (the
 * transport's acknowledged offset), `end` removes the bar.
 *
 * @since 0.4.0
 * @category models
 */
export interface Bar {
  readonly advance: (bytes: number) => Effect.Effect<void>
  readonly end: Effect.Effect<void>
}

/**
 * What draws bars: `open(label, totalBytes)` starts one.
 *
 * @since 0.4.0
 * @category models
 */
export interface Renderer {
  readonly open: (label: string, totalBytes: number) => Effect.Effect<Bar>
}

const noBar: Bar = { advance: () => Effect.void, end: Effect.void }

/**
 * The renderer in use; by default none (no bar, nothing printed).
 *
 * @since 0.4.0
 * @category references
 */
export const TransferProgress = Context.Reference<Renderer>("@fedguard/app-kit/Progress/TransferProgress", {
  defaultValue: () => ({ open: () => Effect.succeed(noBar) }),
})

/**
 * Runs a transfer of `totalBytes` under a bar labelled `label`: `run`
 * receives `advance`, to call with the bytes done (hand it to
 * `sendBytes`' `onProgress`, next to any other observer). The bar is removed
 * when `run` ends, however it ends. At most {@link minBytes}: no bar.
 *
 * @example
 * ```ts
 * Progress.tracked(`model → ${id}`, model.byteLength, (advance) =>
 *   connection.sendBytes(header, Stream.make(model), { onProgress: advance }))
 * ```
 *
 * @since 0.4.0
 * @category tracking
 */
export const tracked = <A, E, R>(
  label: string,
  totalBytes: number,
  run: (advance: (bytes: number) => Effect.Effect<void>) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E, R> =>
  totalBytes <= minBytes
    ? run(noBar.advance)
    : Effect.gen(function* () {
        const renderer = yield* TransferProgress
        return yield* Effect.acquireUseRelease(
          renderer.open(label, totalBytes),
          (bar) => run(bar.advance),
          (bar) => bar.end,
        )
      })

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/**
 * A renderer drawing on `stream` (a TTY), and a `print` for lines that must
 * appear above its bars (while bars are drawn, cli-progress prints them at
 * its next redraw; otherwise at once). The bars stop with the Scope.
 *
 * @since 0.4.0
 * @category renderers
 */
export const terminal = (
  stream: NodeJS.WriteStream,
): Effect.Effect<{ readonly renderer: Renderer; readonly print: (line: string) => void }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const bars = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new MultiBar({
            stream,
            format: "{label} [{bar}] {percentage}% {done} of {size}",
            barCompleteChar: "#",
            barIncompleteChar: "-",
            clearOnComplete: true,
            hideCursor: null,
            autopadding: true,
          }),
      ),
      // A last redraw prints the lines still waiting above the bars.
      (bars) =>
        Effect.sync(() => {
          bars.update()
          bars.stop()
        }),
    )
    let open = 0
    const renderer: Renderer = {
      open: (label, totalBytes) =>
        Effect.sync(() => {
          open++
          const bar: SingleBar = bars.create(totalBytes, 0, { label, done: mib(0), size: mib(totalBytes) })
          // Drawn at once, not at the next tick of cli-progress's timer.
          bars.update()
          return {
            advance: (bytes) => Effect.sync(() => bar.update(Math.min(bytes, totalBytes), { done: mib(bytes) })),
            end: Effect.sync(() => {
              bars.remove(bar)
              open--
              if (open === 0) bars.stop()
            }),
          }
        }),
    }
    const print = (line: string) => (open > 0 ? bars.log(`${line}\n`) : stream.write(`${line}\n`))
    return { renderer, print }
  })

/**
 * Bars on stdout when it is a TTY, with the JSON event lines (`EventLog`'s
 * format) printed above them; when stdout is not a TTY, nothing: the
 * `EventLog.layer` lines stay exactly as they are. Provide it inside
 * `EventLog.layer` (closer to the program), so its logger is the one used.
 *
 * @since 0.4.0
 * @category layers
 */
export const layerTerminal: Layer.Layer<never> = Layer.unwrap(
  Effect.sync(() =>
    process.stdout.isTTY !== true
      ? Layer.empty
      : Layer.unwrap(
          Effect.map(terminal(process.stdout), ({ renderer, print }) =>
            Layer.mergeAll(
              Layer.succeed(TransferProgress, renderer),
              Logger.layer([Logger.map(formatter, (line) => print(line))]),
            ),
          ),
        ),
  ),
)
