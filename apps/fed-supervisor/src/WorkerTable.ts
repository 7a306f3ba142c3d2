/**
 * The live table of fed-supervisor: one row per worker with its status, pid,
 * health, CPU %, RSS, restart count, uptime and how its last process ended (on its own),
 * from the supervisor's `WorkerView` snapshots. Pure rendering; `LiveTable`
 * puts it on the terminal.
 *
 * Every column has a fixed width except the first (as wide as the longest
 * worker id) and `last exit`, which comes last, so a long reason makes its
 * own line longer but never pushes the other columns out of line.
 *
 * @since 0.1.0
 */
import type { WorkerSupervisor } from "@fedguard/supervisor"

const columns = [
  ["status", 10],
  ["pid", 9],
  ["health", 11],
  ["cpu", 8],
  ["rss", 10],
  ["restarts", 10],
  ["uptime", 9],
] as const

const pad = (text: string, width: number) => `${text.padEnd(width - 1)} `

/**
 * `512.0 MiB`, `3.2 GiB`: a size in binary units with one decimal.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatBytes = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

/**
 * `42s`, `3m05s`, `2h07m`: an uptime, to the second under an hour.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatUptime = (millis: number): string => {
  const seconds = Math.max(0, Math.floor(millis / 1000))
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`
}

/**
 * The table's lines, header first: one row per worker in the order given.
 * `now` (`Clock` ms) gives the uptimes; `lastExit` how each worker's last
 * process ended on its own or why it was found unhealthy (`killed by SIGKILL`),
 * `-` when none.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  workers: ReadonlyArray<WorkerSupervisor.WorkerView>,
  now: number,
  lastExit: ReadonlyMap<string, string>,
): ReadonlyArray<string> => {
  const idWidth = Math.max("worker".length, ...workers.map((w) => w.id.length)) + 2
  const line = (id: string, cells: ReadonlyArray<string>, last: string) =>
    (pad(id, idWidth) + cells.map((cell, i) => pad(cell, columns[i]![1])).join("") + last).trimEnd()
  const rows = workers.map((w) => {
    // Health, CPU and RSS are those of the last check: shown only while the process runs.
    const running = w.status === "running"
    return line(
      w.id,
      [
        w.status,
        w.pid === undefined ? "-" : String(w.pid),
        running ? w.health : "-",
        running && w.cpuPercent !== undefined ? `${w.cpuPercent.toFixed(0)}%` : "-",
        running && w.rssBytes !== undefined ? formatBytes(w.rssBytes) : "-",
        String(w.restarts),
        running && w.startedAt !== undefined ? formatUptime(now - w.startedAt) : "-",
      ],
      lastExit.get(w.id) ?? "-",
    )
  })
  return [
    line(
      "worker",
      columns.map(([name]) => name),
      "last exit",
    ),
    ...rows,
  ]
}
