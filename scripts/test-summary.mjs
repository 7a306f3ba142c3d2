// Adds up every package's vitest JSON report into one closing line,
// `fedguard: N passed, N failed`, the plain form CI reads. A package with a
// test script but no report fails the summary: a test run that silently ran
// nothing must not look green.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = dirname(dirname(fileURLToPath(import.meta.url)))
let passed = 0
let failed = 0
let skipped = 0
const missing = []
// Every workspace package: the members of packages/ and apps/, and the single-package folders.
const workspaces = []
for (const group of ["packages", "apps"]) {
  const base = join(root, group)
  if (!existsSync(base)) continue
  for (const name of readdirSync(base).sort()) workspaces.push(`${group}/${name}`)
}
workspaces.push("benchmarks", "tests")
for (const workspace of workspaces) {
  const manifest = join(root, workspace, "package.json")
  if (!existsSync(manifest)) continue
  if (!JSON.parse(readFileSync(manifest, "utf8")).scripts?.test) continue
  const report = join(root, workspace, "test-results.json")
  if (!existsSync(report)) {
    missing.push(workspace)
    continue
  }
  const r = JSON.parse(readFileSync(report, "utf8"))
  passed += r.numPassedTests
  failed += r.numFailedTests
  skipped += r.numPendingTests + (r.numTodoTests ?? 0)
  if (r.numTotalTests === 0) missing.push(`${workspace} (ran no test)`)
}
if (missing.length > 0) process.stderr.write(`no test results from: ${missing.join(", ")}\n`)
process.stdout.write(`fedguard: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
process.exit(failed > 0 || missing.length > 0 ? 1 : 0)
