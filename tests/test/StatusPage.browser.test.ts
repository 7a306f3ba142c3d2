import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Page } from "playwright-core"
import { beforeAll } from "vitest"
import { ensureChromium, launch, newPage, screenshot } from "./support/Browser.ts"
import { is, portOf, seenOf, startClient, startServer, waitFor } from "./support/Processes.ts"

const secret = "browser-secret-123"
const rounds = 5

// What the page shows, read from its DOM and from Chart.js's own data (not from the server). The
// tests are compiled without the DOM's types: the page's side is JavaScript text.
interface Rendered {
  readonly rows: ReadonlyArray<{ readonly id: string; readonly state: string; readonly lastSeen: string }>
  readonly accuracy: ReadonlyArray<number>
  readonly loss: ReadonlyArray<number>
  readonly labels: ReadonlyArray<number>
  readonly canvasPoints: string | null
  readonly timeline: ReadonlyArray<{ readonly label: string; readonly ids: ReadonlyArray<string> }>
  readonly quorum: string | null
  readonly paused: string | null
  readonly connection: string | null
}

const readPage = `(() => {
  const rows = Array.from(document.querySelectorAll("tr[data-client]")).map((row) => ({
    id: row.getAttribute("data-client"),
    state: row.getAttribute("data-state"),
    lastSeen: row.querySelector(".last-seen")?.textContent ?? "",
  }))
  const rounds = Chart.getChart("rounds-chart")
  const timeline = Chart.getChart("timeline-chart")
  return {
    rows,
    accuracy: rounds.data.datasets[0].data,
    loss: rounds.data.datasets[1].data,
    labels: rounds.data.labels,
    canvasPoints: document.getElementById("rounds-chart").getAttribute("data-points"),
    timeline: timeline.data.datasets.map((d) => ({ label: d.label, ids: d.data.map((point) => point.y) })),
    quorum: document.getElementById("quorum-state")?.getAttribute("data-state") ?? null,
    paused: document.getElementById("paused")?.textContent ?? null,
    connection: document.getElementById("connection").getAttribute("data-state"),
  }
})()`

const rendered = (page: Page) => Effect.promise(() => page.evaluate(readPage) as Promise<Rendered>)

const waitUntil = (page: Page, condition: string, arg: unknown) =>
  Effect.promise(() =>
    page.waitForFunction(new Function("arg", `return (${condition})(arg)`) as (arg: unknown) => boolean, arg, {
      timeout: 15_000,
    }),
  )

// The page shows the two clients in these states, and `points` rounds in its chart (when given).
const shows = `({ c0, c1, points }) => {
  const state = (id) => document.querySelector('tr[data-client="' + id + '"]')?.getAttribute("data-state")
  const chart = globalThis.Chart?.getChart("rounds-chart")
  const plotted = points === undefined || (chart !== undefined && chart.data.datasets[0].data.length === points)
  return state("c0") === c0 && state("c1") === c1 && plotted
}`

describe("the status page and the HTML report, in headless Chromium", () => {
  let chromium: ReturnType<typeof ensureChromium> | undefined
  // Installing Chromium (CI's first run) takes minutes: here, not in the test's 60 s. When it
  // cannot be had, the test fails with the reason (it is never skipped).
  beforeAll(() => {
    chromium = ensureChromium()
  }, 15 * 60_000)

  it.live(
    "shows the clients, their states and one chart point per round live during a run (a client stopped, the quorum lost), and the report after it",
    () =>
      Effect.gen(function* () {
        // First: without a browser the test fails at once, saying why.
        const browser = yield* launch(chromium)
        const dir = mkdtempSync(join(tmpdir(), "fedguard-browser-"))
        const reportHtml = join(dir, "report.html")
        const server = yield* startServer(secret, [
          ...["--expected-clients", "2", "--min-clients", "2", "--rounds", String(rounds)],
          ...["--local-steps", "20", "--heartbeat-interval", "200ms", "--heartbeat-timeout", "1s"],
          ...["--round-timeout", "20s", "--status-port", "0", "--report-html", reportHtml],
          ...["--report", join(dir, "report.json")],
        ])
        const port = yield* portOf(server)
        const { url } = yield* waitFor(server, is("StatusPageListening"))
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
        const client = (index: number) =>
          startClient(port, {
            id: `c${index}`,
            index,
            count: 2,
            secret,
            flags: ["--retry-base-delay", "100ms", "--heartbeat-timeout", "5s"],
          })
        yield* client(0)
        const c1 = yield* client(1)
        yield* waitFor(
          server,
          is("RoundCompleted", (event) => event.round === 2),
        )
        // c1 stops answering (its socket stays open): offline after the 1 s heartbeat timeout,
        // the quorum of 2 is lost, and the next round waits.
        c1.process.kill("SIGSTOP")
        yield* waitFor(server, is("RoundPaused"))
        const completed = seenOf(server, "RoundCompleted").length

        const { page, errors } = yield* newPage(browser)
        yield* Effect.promise(() => page.goto(url))
        yield* waitUntil(page, shows, { c0: "online", c1: "offline", points: completed })
        const live = yield* rendered(page)
        assert.deepStrictEqual(
          live.rows.map((row) => [row.id, row.state]),
          [
            ["c0", "online"],
            ["c1", "offline"],
          ],
        )
        assert.match(live.rows[0]!.lastSeen, /^\d+\.\d s ago$/)
        assert.deepStrictEqual(
          live.labels,
          [...Array(completed).keys()].map((i) => i + 1),
        )
        assert.strictEqual(live.canvasPoints, String(completed))
        const accuracies = seenOf(server, "RoundCompleted").map((event) => event.testAccuracy)
        assert.deepStrictEqual(live.accuracy, accuracies)
        assert.strictEqual(live.quorum, "lost")
        assert.match(live.paused ?? "", /^Round \d+ is paused: 1 of 2 clients online\.$/)
        assert.strictEqual(live.connection, "live")
        assert.include(
          live.timeline.find((dataset) => dataset.label === "offline")?.ids ?? [],
          "c1",
          "c1's offline mark is on the timeline",
        )
        yield* screenshot(page, "status-page.png")

        // c1 resumes, rejoins, and the page follows without a reload.
        c1.process.kill("SIGCONT")
        yield* waitUntil(page, shows, { c0: "online", c1: "online" })
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())

        yield* Effect.promise(() => page.goto(pathToFileURL(reportHtml).href))
        yield* waitUntil(page, "({ points }) => document.body.getAttribute('data-rendered') === String(points)", {
          points: rounds,
        })
        const report = yield* rendered(page)
        assert.deepStrictEqual(
          report.labels,
          [...Array(rounds).keys()].map((i) => i + 1),
        )
        assert.strictEqual(report.canvasPoints, String(rounds))
        const json = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as {
          rounds: Array<{ testAccuracy: number; testLoss: number }>
        }
        assert.deepStrictEqual(
          report.accuracy,
          json.rounds.map((round) => round.testAccuracy),
        )
        assert.deepStrictEqual(
          report.loss,
          json.rounds.map((round) => round.testLoss),
        )
        assert.deepStrictEqual(
          report.rows.map((row) => [row.id, row.state]),
          [
            ["c0", "left"],
            ["c1", "left"],
          ],
        )
        const online = report.timeline.find((dataset) => dataset.label === "online")?.ids ?? []
        assert.deepStrictEqual(
          online.filter((id) => id === "c1").length,
          2,
          "c1 was online twice: before the stop and after it rejoined",
        )
        assert.include(report.timeline.find((dataset) => dataset.label === "offline")?.ids ?? [], "c1")
        assert.notInclude(readFileSync(reportHtml, "utf8"), "<script src=", "the report is self-contained")
        yield* screenshot(page, "report.png")
        assert.deepStrictEqual(errors(), [])
      }).pipe(Effect.scoped, Effect.timeout("55 seconds")),
    60_000,
  )
})
