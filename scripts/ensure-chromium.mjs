#!/usr/bin/env node
// Makes sure Debian's Chromium is installed for the browser tests (tests/test/StatusPage.browser.test.ts):
// when the browser is absent, installs the `chromium` package with apt-get, non-interactively
// (CI runs with CI=true and no standard input). `apt-get update` runs only when the first install
// fails (an old or missing package list), so a machine that already has the lists does not pay
// for a refresh.
//
//   node scripts/ensure-chromium.mjs            exit 0: the browser is there (its path on stdout)
//                                               exit 1: it is not and could not be installed (why on stderr)
//
// FEDGUARD_CHROMIUM=/path/to/chromium uses that browser instead and installs nothing.
//
// It runs on any Node from 20 up, before or after the workspace is installed: built-ins only.
import { spawnSync } from "node:child_process"
import { accessSync, constants } from "node:fs"

const DEFAULT = "/usr/bin/chromium"
const log = (line) => process.stderr.write(`[ensure-chromium] ${line}\n`)

const executable = (path) => {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

const done = (path) => {
  process.stdout.write(`${path}\n`)
  process.exit(0)
}

const fail = (message) => {
  log(`error: ${message}`)
  process.exit(1)
}

const given = process.env.FEDGUARD_CHROMIUM
if (given !== undefined && given !== "") {
  if (executable(given)) done(given)
  fail(`FEDGUARD_CHROMIUM=${given} is not an executable file`)
}
if (executable(DEFAULT)) done(DEFAULT)

if (process.platform !== "linux") fail(`${DEFAULT} is absent and this is not Linux: install Chromium by hand`)
const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" })
if (apt.status !== 0) fail(`${DEFAULT} is absent and apt-get is not available: install Chromium by hand`)
const isRoot = typeof process.getuid === "function" && process.getuid() === 0
const sudo = isRoot ? [] : ["sudo", "-n"]

const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
const aptGet = (args) => {
  const [command, ...rest] = [...sudo, "apt-get", ...args]
  log(`${command} ${rest.join(" ")}`)
  // Standard input is closed: a prompt can never wait for an answer.
  const result = spawnSync(command, rest, { stdio: ["ignore", "ignore", "inherit"], env })
  return result.error === undefined && result.status === 0
}

const install = ["install", "-y", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold", "chromium"]
log(`${DEFAULT} is absent: installing Debian's chromium package`)
if (!aptGet(install)) {
  log("the install failed; refreshing the package lists and trying once more")
  if (!aptGet(["update"])) fail("apt-get update failed (see above)")
  if (!aptGet(install)) fail("apt-get install chromium failed (see above)")
}
if (!executable(DEFAULT)) fail(`apt-get installed chromium but ${DEFAULT} is still absent`)
done(DEFAULT)
