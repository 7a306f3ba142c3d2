/**
 * Test support: headless Chromium (Debian's package, driven by
 * playwright-core), found or installed by `scripts/ensure-chromium.mjs`.
 * When the browser cannot be had, `launch` fails the test with what the
 * script said: a browser test never skips silently.
 */
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"
import { type Browser, type Page, chromium as playwright } from "playwright-core"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

/** Where the browser tests keep their screenshots (gitignored). */
export const outputDir = join(root, "tests", "test-output")

/** Where the README's screenshots live. */
export const imagesDir = join(root, "docs", "images")

/**
 * The browser's path, from `scripts/ensure-chromium.mjs` (which installs Debian's `chromium`
 * when it is absent: minutes, so call it from a `beforeAll` with a long timeout, not from a
 * test), or the script's own explanation of why the browser cannot be had, for the test to fail
 * with (a failing `beforeAll` would only mark the test skipped).
 */
export const ensureChromium = (): { readonly path: string } | { readonly error: string } => {
  const script = join(root, "scripts", "ensure-chromium.mjs")
  const result = spawnSync(process.execPath, [script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 15 * 60_000,
  })
  const path = result.stdout?.trim()
  return result.status === 0 && path !== undefined && path !== ""
    ? { path }
    : {
        error: `the browser tests need Chromium and it could not be had (scripts/ensure-chromium.mjs exited with ${
          result.status ?? result.signal ?? result.error?.message
        }):\n${result.stderr}`,
      }
}

// The flags a sandboxed, offline CI machine needs (root: no sandbox; no network: no background
// fetches, which would otherwise be refused many at a time).
const flags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** Headless Chromium, closed with the Scope; fails the test with the reason when there is none. */
export const launch = (
  chromium: { readonly path: string } | { readonly error: string } | undefined,
): Effect.Effect<Browser, never, Scope.Scope> =>
  chromium === undefined || "error" in chromium
    ? Effect.die(new Error(chromium?.error ?? "ensureChromium() was not called"))
    : Effect.acquireRelease(
        Effect.promise(() =>
          playwright.launch({ executablePath: chromium.path, args: flags, headless: true, timeout: 30_000 }),
        ),
        (browser) => Effect.promise(() => browser.close()),
      )

/** A new page of 1200 × 900 CSS pixels whose script errors fail the test. */
export const newPage = (browser: Browser) =>
  Effect.gen(function* () {
    const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1200, height: 900 } }))
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(error.message))
    return { page, errors: () => errors }
  })

/**
 * Saves a full-page screenshot as `name` under {@link outputDir}; with
 * `FEDGUARD_UPDATE_SCREENSHOTS=1` also copies it to {@link imagesDir}, the README's images
 * (so that an ordinary test run leaves the tracked files alone).
 */
export const screenshot = (page: Page, name: string) =>
  Effect.gen(function* () {
    mkdirSync(outputDir, { recursive: true })
    const path = join(outputDir, name)
    yield* Effect.promise(() => page.screenshot({ path, fullPage: true }))
    if (process.env.FEDGUARD_UPDATE_SCREENSHOTS === "1") {
      mkdirSync(imagesDir, { recursive: true })
      copyFileSync(path, join(imagesDir, name))
    }
    return path
  })
