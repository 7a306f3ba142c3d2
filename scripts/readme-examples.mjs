#!/usr/bin/env node
// Keeps a package README's code in step with files the compiler checks. Every
// TypeScript block of README.md must sit between markers naming a file of the
// package, and be that file verbatim:
//
//   <!-- example: examples/liveness.ts -->
//   ```ts
//   …the file's content…
//   ```
//   <!-- /example -->
//
// The package's tsconfig.json includes `examples`, so its `typecheck` task
// compiles the files and then runs this script, which fails when a block
// differs from its file, a TypeScript block has no file, a file in examples/
// is in no block, or the README links outside the package (a published README
// has no `../shared/` next to it).
//
//   node ../../scripts/readme-examples.mjs           check the package in the working directory
//   node ../../scripts/readme-examples.mjs --write   rewrite the README's blocks from their files
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const write = process.argv.includes("--write")
const root = dirname(dirname(fileURLToPath(import.meta.url)))
const packageDir = process.cwd()
const readmePath = join(packageDir, "README.md")
const readme = readFileSync(readmePath, "utf8")
const problems = []
const lineOf = (index) => readme.slice(0, index).split("\n").length
const report = (index, message) => problems.push(`README.md:${lineOf(index)}: ${message}`)

const region = /<!-- example: (\S+) -->\n([\s\S]*?)<!-- \/example -->/g
const blockOf = (file) => `\`\`\`ts\n${readFileSync(join(packageDir, file), "utf8").trimEnd()}\n\`\`\`\n`

const included = new Set()
let drifted = false
const regions = []
for (const match of readme.matchAll(region)) {
  const [, file, body] = match
  regions.push({ start: match.index, end: match.index + match[0].length })
  if (!file.startsWith("examples/") || !existsSync(join(packageDir, file))) {
    report(match.index, `example file ${file} does not exist (examples live in examples/)`)
    continue
  }
  included.add(file)
  const expected = blockOf(file)
  if (body === expected) continue
  if (write) continue
  drifted = true
  const want = expected.split("\n")
  const got = body.split("\n")
  const at = want.findIndex((line, i) => line !== got[i])
  report(
    match.index + match[0].indexOf("\n") + 1 + got.slice(0, at).join("\n").length + 1,
    `the block differs from ${file}:\n  file:   ${want[at] ?? "<end>"}\n  README: ${got[at] ?? "<end>"}`,
  )
}

const inRegion = (index) => regions.some((r) => index >= r.start && index < r.end)
for (const fence of readme.matchAll(/^```(ts|tsx|typescript|js|javascript)\s*$/gm)) {
  if (!inRegion(fence.index))
    report(fence.index, "a code block outside <!-- example: … --> markers is not type-checked")
}

for (const link of readme.matchAll(/\]\((\.\.\/[^)]*)\)|\.\.\/shared\//g)) {
  report(link.index, `links outside the package (${link[1] ?? "../shared/"}): a published README has nothing there`)
}

const examplesDir = join(packageDir, "examples")
const exampleFiles = existsSync(examplesDir)
  ? readdirSync(examplesDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name))
      .map((entry) => relative(packageDir, join(entry.parentPath, entry.name)).split("\\").join("/"))
  : []
for (const file of exampleFiles) {
  if (!included.has(file)) problems.push(`${file}: not included in README.md (add <!-- example: ${file} --> markers)`)
}
if (exampleFiles.length > 0 && !/"examples"/.test(readFileSync(join(packageDir, "tsconfig.json"), "utf8"))) {
  problems.push(`tsconfig.json: does not include "examples", so the examples are not type-checked`)
}

if (write) {
  const updated = readme.replace(region, (whole, file, _body) =>
    included.has(file) ? `<!-- example: ${file} -->\n${blockOf(file)}<!-- /example -->` : whole,
  )
  if (updated !== readme) writeFileSync(readmePath, updated)
}

if (problems.length > 0) {
  process.stderr.write(`${problems.map((p) => `${relative(root, packageDir)}/${p}`).join("\n")}\n`)
  if (drifted)
    process.stderr.write("Run `node ../../scripts/readme-examples.mjs --write` to copy the files into README.md.\n")
  process.exit(1)
}
