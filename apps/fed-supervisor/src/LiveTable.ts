/**
 * Keeps a table at the bottom of the terminal while the workers' own output
 * scrolls above it, the way apt keeps its progress line: the rows above the
 * table are set as the terminal's scroll region (DECSTBM), so whatever the
 * workers write (they share the terminal) scrolls there, and the table is
 * redrawn in its fixed rows with the cursor saved and restored around it.
 *
 * A terminal too short for the table and three lines of output gets the
 * table printed as plain lines each time it changes instead. When the Scope
 * closes, the scroll region is reset and the last table stays on screen.
 *
 * @since 0.1.0
 */
import { Effect, Ref, Schedule, Terminal } from "effect"

const esc = "\u001b"

/** The fewest rows left for the workers' output above the table. */
const minOutputRows = 3

/**
 * The escape sequence that makes room for a table of `height` lines at the
 * bottom of a terminal of `rows` rows and confines scrolling to the rows
 * above it, leaving the cursor on the last of those.
 *
 * @since 0.1.0
 * @category rendering
 */
export const open = (height: number, rows: number): string =>
  `${"\n".repeat(height)}${esc}[1;${rows - height}r${esc}[${rows - height};1H`

/**
 * The escape sequence that draws `lines` in the bottom rows of the terminal
 * (each cut to `columns` characters) and puts the cursor back where the
 * workers' output left it.
 *
 * @since 0.1.0
 * @category rendering
 */
export const draw = (lines: ReadonlyArray<string>, rows: number, columns: number): string => {
  const top = rows - lines.length + 1
  const body = lines.map((line, i) => `${esc}[${top + i};1H${esc}[2K${line.slice(0, columns)}`).join("")
  return `${esc}7${body}${esc}8`
}

/**
 * The escape sequence that gives the whole terminal back to scrolling, with
 * the cursor under the table.
 *
 * @since 0.1.0
 * @category rendering
 */
export const close = (rows: number): string => `${esc}[r${esc}[${rows};1H\n`

/**
 * Shows `table` (re-rendered every `refresh`) at the bottom of the terminal
 * until the current Scope closes; `height` is its number of lines, fixed for
 * the run.
 *
 * @since 0.1.0
 * @category running
 */
export const show = Effect.fnUntraced(function* (
  table: Effect.Effect<ReadonlyArray<string>>,
  height: number,
  refresh: Effect.Effect<void>,
) {
  const terminal = yield* Terminal.Terminal
  const display = (text: string) => Effect.ignore(terminal.display(text))
  // The rows the scroll region was set for; 0 while the table is printed as plain lines.
  const region = yield* Ref.make(0)
  const last = yield* Ref.make("")
  const frame = Effect.gen(function* () {
    const [rows, columns, lines] = yield* Effect.all([terminal.rows, terminal.columns, table])
    const fits = rows >= height + minOutputRows
    const current = yield* Ref.get(region)
    if (fits && current !== rows) {
      if (current !== 0) yield* display(close(current))
      yield* display(open(height, rows))
      yield* Ref.set(region, rows)
    } else if (!fits && current !== 0) {
      yield* display(close(current))
      yield* Ref.set(region, 0)
    }
    if (fits) return yield* display(draw(lines, rows, columns))
    const text = lines.join("\n")
    if (text === (yield* Ref.get(last))) return
    yield* Ref.set(last, text)
    yield* display(`${text}\n`)
  })
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      yield* frame
      const rows = yield* Ref.get(region)
      if (rows !== 0) yield* display(close(rows))
    }),
  )
  yield* frame.pipe(Effect.andThen(refresh), Effect.repeat(Schedule.forever), Effect.forkScoped)
})
