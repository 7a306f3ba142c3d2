#!/usr/bin/env node
// Provisions the pinned toolchain, installs the workspace from its lockfile,
// then runs a command with that toolchain first on PATH.
//
// It runs on the system Node, which may be as old as 20, before any dependency
// exists, so it is plain ESM on node: built-ins only (no Effect here: Effect 4
// needs the Node this script provisions).
//
//   node scripts/bootstrap.mjs pnpm <args…>       run the pinned pnpm
//   node scripts/bootstrap.mjs app <name> <args…> build apps/<name> (turbo, cached) and run its bin
//   node scripts/bootstrap.mjs node <file> <args…> run a file on the provisioned Node after a full build
//
// Each step is skipped when a stamp shows its inputs have not changed, so a
// second run reinstalls nothing.
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const TOOLCHAIN = join(ROOT, "tools", "toolchain")
const MIN_NODE = [22, 19, 0]
const log = (line) => process.stderr.write(`[bootstrap] ${line}\n`)

const fail = (message) => {
  process.stderr.write(`[bootstrap] error: ${message}\n`)
  process.exit(1)
}

const atLeast = (version, min) => {
  const parts = version.split(".").map(Number)
  for (let i = 0; i < min.length; i++) {
    if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i]
  }
  return true
}

const hashOf = (files) => {
  const hash = createHash("sha256")
  for (const file of files) {
    hash.update(file)
    hash.update(existsSync(file) ? readFileSync(file) : "<missing>")
  }
  return hash.digest("hex")
}

const stampOk = (stampFile, digest) => existsSync(stampFile) && readFileSync(stampFile, "utf8") === digest

const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { stdio: ["ignore", "inherit", "inherit"], ...options })
  if (result.error) fail(`${command} ${args.join(" ")}: ${result.error.message}`)
  if (result.status !== 0) fail(`${command} ${args.join(" ")} exited with ${result.status ?? result.signal}`)
}

// Node 24 from the registry trusts only its bundled CAs; where the registry is reached through
// a TLS-inspecting proxy whose CA lives in the operating system's store (as on these machines),
// every npm request under it fails and retries for a minute. Trusting the system store too
// (Node >= 22.15) fixes that; a user's own setting wins.
const trustSystemCa = { NODE_USE_SYSTEM_CA: process.env.NODE_USE_SYSTEM_CA ?? "1" }

// npm ci into a toolchain folder, once per lockfile content.
const provision = (name) => {
  const dir = join(TOOLCHAIN, name)
  const stamp = join(dir, "node_modules", ".fedguard-stamp")
  const digest = hashOf([join(dir, "package.json"), join(dir, "package-lock.json")])
  if (stampOk(stamp, digest)) return dir
  log(`provisioning ${name} from tools/toolchain/${name}/package-lock.json`)
  const npm = process.platform === "win32" ? "npm.cmd" : "npm"
  run(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: dir,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, ...trustSystemCa },
  })
  writeFileSync(stamp, digest)
  return dir
}

const nodeBinDir = () => {
  if (atLeast(process.versions.node, MIN_NODE)) return dirname(process.execPath)
  const dir = provision("node")
  const pkg = `node-${process.platform}-${process.arch}`
  const bin = join(dir, "node_modules", pkg, "bin")
  if (!existsSync(join(bin, "node"))) {
    fail(
      `system Node ${process.versions.node} is older than ${MIN_NODE.join(".")} and the registry ` +
        `has no pinned ${pkg}; install Node 24 LTS and run again`,
    )
  }
  return bin
}

const workspaceManifests = () => {
  const files = [join(ROOT, "package.json"), join(ROOT, "pnpm-lock.yaml"), join(ROOT, "pnpm-workspace.yaml")]
  for (const single of ["benchmarks", "tests"]) files.push(join(ROOT, single, "package.json"))
  for (const group of ["packages", "apps"]) {
    const base = join(ROOT, group)
    if (!existsSync(base)) continue
    for (const entry of readdirSync(base).sort()) {
      const manifest = join(base, entry, "package.json")
      if (existsSync(manifest)) files.push(manifest)
    }
  }
  return files
}

const pnpmBinDir = () => {
  const dir = provision("pnpm")
  const bin = join(dir, "node_modules", "@pnpm", `exe.${process.platform}-${process.arch}`)
  if (!existsSync(join(bin, "pnpm")))
    fail(`the registry has no pinned pnpm executable for ${process.platform}-${process.arch}`)
  return bin
}

const nodeBin = nodeBinDir()
const pnpmBin = pnpmBinDir()
const env = {
  ...process.env,
  ...trustSystemCa,
  PATH: [nodeBin, pnpmBin, join(ROOT, "node_modules", ".bin"), process.env.PATH].join(
    process.platform === "win32" ? ";" : ":",
  ),
  TURBO_TELEMETRY_DISABLED: "1",
  TURBO_NO_UPDATE_NOTIFIER: "1",
  DO_NOT_TRACK: "1",
}
const pnpm = join(pnpmBin, "pnpm")

const installStamp = join(ROOT, "node_modules", ".fedguard-stamp")
const installDigest = hashOf(workspaceManifests()) + nodeBin
if (!stampOk(installStamp, installDigest)) {
  log("installing the workspace from pnpm-lock.yaml (frozen)")
  run(pnpm, ["install", "--frozen-lockfile", "--reporter=append-only"], { cwd: ROOT, env, stdio: ["ignore", 2, 2] })
  writeFileSync(installStamp, installDigest)
}

const [command, ...rest] = process.argv.slice(2)

// Runs the final command as a child that owns the terminal; signals are passed on
// so that Ctrl-C reaches it (and through it, the processes it started).
const handOver = (file, args) => {
  const child = spawn(file, args, { cwd: process.cwd(), env, stdio: "inherit" })
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal))
  }
  child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 1)))
}

// Builds through turbo (cached) with its chatter on stderr, so that a program's
// stdout stays its own (fed-server's first stdout line is its listening event).
const build = (filter) => {
  const args = ["exec", "turbo", "run", "build", "--output-logs=errors-only", "--log-prefix=none"]
  if (filter) args.push(`--filter=${filter}...`)
  run(pnpm, args, { cwd: ROOT, env, stdio: ["ignore", 2, 2] })
}

switch (command) {
  case "pnpm":
    handOver(pnpm, rest)
    break
  case "app": {
    const [name, ...args] = rest
    const manifest = join(ROOT, "apps", name ?? "", "package.json")
    if (!name || !existsSync(manifest)) fail(`no app named '${name ?? ""}' under apps/`)
    const pkg = JSON.parse(readFileSync(manifest, "utf8"))
    build(pkg.name)
    const bin = typeof pkg.bin === "string" ? pkg.bin : Object.values(pkg.bin ?? {})[0]
    if (!bin) fail(`apps/${name}/package.json has no bin`)
    handOver(join(nodeBin, "node"), [join(ROOT, "apps", name, bin), ...args])
    break
  }
  case "node": {
    const [file, ...args] = rest
    if (!file) fail("usage: bootstrap.mjs node <file> [args…]")
    build(undefined)
    handOver(join(nodeBin, "node"), [join(ROOT, file), ...args])
    break
  }
  default:
    fail(`unknown command '${command ?? ""}' (expected pnpm, app or node)`)
}
