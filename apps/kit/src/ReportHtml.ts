/**
 * The run page, as one self-contained HTML file (fed-server's
 * `--report-html`) or as the live status page's shell: the same markup,
 * style and script (`internal/pageScript.ts`) either way, so what a person
 * watches live is what the report keeps.
 *
 * Charts are drawn by Chart.js (accuracy and loss per round; the liveness
 * timeline as floating bars with marks coloured by reason). Its minified
 * build is read from the installed `chart.js` package when the page is made
 * and inlined, so the file opens offline, years later, with nothing beside
 * it.
 *
 * @since 0.4.0
 */
import { fileURLToPath } from "node:url"
import { Effect, FileSystem, Path, Schema } from "effect"
import { pageBody, pageScript, pageStyle } from "./internal/pageScript.ts"
import { type RunView, toScriptJson } from "./RunView.ts"

/**
 * The page could not be made or written: the chart library could not be
 * read (`path` is its file) or the report could not be written (`path` is
 * the report's file).
 *
 * @since 0.4.0
 * @category errors
 */
export class ReportHtmlError extends Schema.TaggedError<ReportHtmlError>()("ReportHtmlError", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/**
 * Where Chart.js's minified UMD build is: next to the module the `chart.js`
 * package exports (`dist/chart.js` → `dist/chart.umd.min.js`), found through
 * Node's resolution, so it works wherever the package manager put it.
 *
 * @since 0.4.0
 * @category chart library
 */
export const chartLibraryPath: Effect.Effect<string, never, Path.Path> = Effect.gen(function* () {
  const path = yield* Path.Path
  return path.join(path.dirname(fileURLToPath(import.meta.resolve("chart.js"))), "chart.umd.min.js")
})

/**
 * The text of Chart.js's minified build (about 200 KB), checked to be
 * safe inside a `<script>` element.
 *
 * @since 0.4.0
 * @category chart library
 */
export const chartLibrary: Effect.Effect<string, ReportHtmlError, FileSystem.FileSystem | Path.Path> = Effect.gen(
  function* () {
    const path = yield* chartLibraryPath
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(Effect.mapError((error) => new ReportHtmlError({ path, reason: `cannot read Chart.js: ${error.message}` })))
    if (/<\/script/i.test(text)) {
      return yield* new ReportHtmlError({ path, reason: "Chart.js's build contains </script and cannot be inlined" })
    }
    return text
  },
)

const escapeText = (text: string): string =>
  text.replace(/[&<>"]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;"))

/**
 * The page's HTML. With `view`, the page is a report: the view is embedded
 * (as escaped JSON) and rendered once, offline. Without it, the page is the
 * live status page's shell: it holds no data, and its script streams views
 * from `events` next to the page's address.
 *
 * @since 0.4.0
 * @category rendering
 */
export const page = (options: {
  readonly title: string
  readonly chartLibrary: string
  readonly view?: RunView | undefined
}): string =>
  [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeText(options.title)}</title>`,
    `<style>${pageStyle}</style>`,
    `</head><body data-mode="${options.view === undefined ? "live" : "report"}">`,
    pageBody,
    options.view === undefined
      ? ""
      : `<script id="fedguard-view" type="application/json">${toScriptJson(options.view)}</script>`,
    `<script>${options.chartLibrary}</script>`,
    `<script>${pageScript}</script>`,
    "</body></html>",
    "",
  ].join("\n")

/**
 * The report page of `view`, with Chart.js inlined.
 *
 * @since 0.4.0
 * @category rendering
 */
export const render = (view: RunView): Effect.Effect<string, ReportHtmlError, FileSystem.FileSystem | Path.Path> =>
  Effect.map(chartLibrary, (library) => page({ title: view.title, chartLibrary: library, view }))

/**
 * Writes the report page of `view` to `path` (one file, about 250 KB).
 *
 * @since 0.4.0
 * @category rendering
 */
export const write = (
  path: string,
  view: RunView,
): Effect.Effect<void, ReportHtmlError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const html = yield* render(view)
    const fs = yield* FileSystem.FileSystem
    yield* fs
      .writeFileString(path, html)
      .pipe(Effect.mapError((error) => new ReportHtmlError({ path, reason: `cannot write: ${error.message}` })))
  })
