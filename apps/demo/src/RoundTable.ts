/**
 * The demo's live table, rendered from the server's typed events: one row
 * per completed round, a row when the server pauses for quorum or gets it
 * back, a row when a restarted server resumes its job, and short notes for
 * client events under the row they follow.
 *
 * Every column has a fixed width except `excluded`, which comes last: a
 * round that excludes many clients (or long reasons) makes its own line
 * longer but never pushes `accuracy`, `loss` or `time` out of line.
 *
 * @since 0.2.0
 */
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Option } from "effect"

const columns = [
  ["round", 7],
  ["participants", 14],
  ["accuracy", 10],
  ["loss", 8],
  ["time", 8],
] as const

const pauseStates: ReadonlyArray<string> = ["running", "paused"]

const pad = (text: string, width: number) => `${text.padEnd(width - 1)} `

const line = (cells: ReadonlyArray<string>, last: string) =>
  (cells.map((cell, i) => pad(cell, columns[i]![1])).join("") + last).trimEnd()

/**
 * `round  participants  accuracy  loss    time    excluded`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const header: string = line(
  columns.map(([name]) => name),
  "excluded",
)

/**
 * One completed round. `excluded` lists `id:reason`, or `-`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const row = (round: ServerEvent.RoundCompleted): string =>
  line(
    [
      String(round.round),
      String(round.participants.length),
      round.testAccuracy.toFixed(4),
      round.testLoss.toFixed(3),
      `${(round.durationMs / 1000).toFixed(1)} s`,
    ],
    round.excluded.map((e) => `${e.id}:${e.reason}`).join(", ") || "-",
  )

/**
 * What the table shows for one server event: a row for a completed round,
 * a pause, a restored quorum or a resumed job; an indented note for client
 * and update events and for the job pausing or running again; nothing for
 * the rest.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (event: ServerEvent.ServerEvent): Option.Option<string> => {
  switch (event._tag) {
    case "RoundCompleted":
      return Option.some(row(event))
    case "RoundPaused":
      return Option.some(
        `${pad(String(event.round), columns[0][1])}paused: ${event.online} of ${event.minClients} needed clients online`,
      )
    case "QuorumRestored":
      return Option.some(
        `${pad("", columns[0][1])}resumed: quorum restored, ${event.alive} of ${event.minClients} needed clients alive`,
      )
    case "JobResumed":
      return Option.some(
        `${pad("", columns[0][1])}resumed: job ${event.jobId} after round ${event.afterRound} of ${event.rounds}, ` +
          `from the state file (model ${event.modelSha256.slice(0, 12)}…)`,
      )
    case "JobStateChanged":
      // Only the job's pauses and resumptions: its launch and end show in the rows already.
      return pauseStates.includes(event.from) && pauseStates.includes(event.to)
        ? Option.some(`  · job-state ${event.from} → ${event.to}: ${event.reason}`)
        : Option.none()
    case "JoinTimedOut":
      return Option.some(`  · join-timeout ${event.online} of ${event.expected} expected clients online`)
    case "QuorumLost":
      return Option.some(`  · quorum-lost ${event.alive} alive, ${event.minClients} needed`)
    case "ClientWentOffline":
      return Option.some(`  · client-offline ${event.id} ${event.reason}`)
    case "ClientRejoined":
      return Option.some(`  · client-online ${event.id}`)
    case "ClientRefused":
      return Option.some(`  · client-rejected ${event.id} ${event.reason}`)
    case "UpdateRejected":
      return Option.some(`  · update-rejected ${event.id} round ${event.round}: ${event.reason}`)
    case "ClientExcluded":
      return Option.some(`  · client-excluded ${event.id} round ${event.round}: ${event.reason}`)
    default:
      return Option.none()
  }
}
