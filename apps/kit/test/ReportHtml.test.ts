import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as ReportHtml from "../src/ReportHtml.ts"
import * as RunView from "../src/RunView.ts"

const hostile = '</script><img src=x onerror="alert(1)">&amp;\u2028'

const view: RunView.RunView = {
  ...RunView.empty("job <b>1</b>", 1_000),
  finished: true,
  clients: [{ id: hostile, state: "left", lastSeenAt: 2_000, spans: [{ from: 1_100, to: 2_000 }], marks: [] }],
  rounds: [
    {
      round: 1,
      participants: [hostile],
      excluded: [],
      rejectedUpdates: 0,
      modelUpdated: true,
      testAccuracy: 0.8,
      testLoss: 0.7,
      modelSha256: "00",
      durationMs: 5,
      bytesIn: 1,
      bytesOut: 1,
      at: 1_500,
    },
  ],
}

const embedded = (html: string) => {
  const open = '<script id="fedguard-view" type="application/json">'
  const start = html.indexOf(open) + open.length
  return html.slice(start, html.indexOf("</script>", start))
}

describe("ReportHtml", () => {
  it.effect("renders one self-contained page: Chart.js inlined from node_modules, no external script or style", () =>
    Effect.gen(function* () {
      const html = yield* ReportHtml.render(view)
      assert.include(html, "Chart.js v4.6.1")
      assert.notMatch(html, /<script[^>]+src=/)
      assert.notMatch(html, /<link[^>]+href=/)
      assert.include(html, '<body data-mode="report">')
      assert.include(html, '<canvas id="rounds-chart"')
    }).pipe(Effect.provide(NodeServices.layer)),
  )

  it.effect(
    "embeds the view so that no value can close its script element or start markup, and decodes back to it",
    () =>
      Effect.gen(function* () {
        const html = yield* ReportHtml.render(view)
        assert.notInclude(html, "</script><img")
        assert.notInclude(html, "<b>1</b>")
        assert.include(html, "<title>job &lt;b&gt;1&lt;/b&gt;</title>")
        const decoded = Schema.decodeUnknownSync(RunView.RunView)(JSON.parse(embedded(html)))
        assert.deepStrictEqual(decoded, view)
      }).pipe(Effect.provide(NodeServices.layer)),
  )

  it("without a view, is the live page's shell: no embedded data", () => {
    const html = ReportHtml.page({ title: "fedguard status", chartLibrary: "/* chart */" })
    assert.include(html, '<body data-mode="live">')
    assert.notInclude(html, `id="fedguard-view"`)
  })

  it.effect("writes the page to a file, and fails naming the file when it cannot", () =>
    Effect.gen(function* () {
      const path = join(mkdtempSync(join(tmpdir(), "fedguard-report-html-")), "report.html")
      yield* ReportHtml.write(path, view)
      assert.include(readFileSync(path, "utf8"), "Chart.js v4.6.1")
      const missing = join(path, "no-such-directory", "report.html")
      const error = yield* Effect.flip(ReportHtml.write(missing, view))
      assert.strictEqual(error._tag, "ReportHtmlError")
      assert.strictEqual(error.path, missing)
    }).pipe(Effect.provide(NodeServices.layer)),
  )
})
