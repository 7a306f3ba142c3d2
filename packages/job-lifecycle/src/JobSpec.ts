/**
 * What a federated job asks for: its name, rounds and model, which sites may
 * take part (a fixed list or open enrolment), how many must (`minSites`) and
 * which ones cannot be missing (`requiredSites`), and the deploy, start and
 * round timeouts.
 *
 * A spec is refused as a whole: `decode` collects every problem (one per
 * field, cross-field rules included) into one `InvalidJobSpec`, so an
 * operator fixes a spec in one pass instead of one error at a time. Unknown
 * keys are problems too: a misspelt `minsites` would otherwise leave the
 * quorum silently unset.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Result, Schema, SchemaIssue } from "effect"
import { InvalidJobSpec, type SpecProblem } from "./JobError.ts"
import { SiteId } from "./SiteId.ts"

// A string `Duration.fromInput` parses ("30 seconds"), or a number of milliseconds.
const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis])

const positiveDuration = (defaultValue: string, description: string) =>
  DurationInput.check(Schema.makeFilter((d) => Duration.isPositive(d) || "must be a positive duration"))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

const positiveInt = (description: string) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "must be a positive integer" })).annotate({
    description,
  })

const Fields = Schema.Struct({
  name: Schema.String.check(Schema.isMinLength(1, { message: "must not be empty" })).annotate({
    description: "the job's name, as reports and events show it",
  }),
  rounds: positiveInt("training rounds to run"),
  model: Schema.String.check(Schema.isMinLength(1, { message: "must not be empty" })).annotate({
    description: "the model (or the model's reference) to train",
  }),
  clients: Schema.Union([Schema.Array(SiteId), Schema.Literal("open")]).annotate({
    description: 'the sites that may take part, or "open" for any site that enrols',
  }),
  minSites: positiveInt("sites that must deploy, start and take part in every round"),
  requiredSites: Schema.Array(SiteId)
    .annotate({ description: "sites without which the job cannot run (each must be among clients)" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  deployTimeout: positiveDuration("60 seconds", "a site that has not deployed within it has failed to deploy"),
  startTimeout: positiveDuration("60 seconds", "a site that has not started within it is excluded (strict start)"),
  roundTimeout: positiveDuration("10 minutes", "the longest a round may take"),
  seed: Schema.Int.annotate({ description: "the job's random seed" }).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(0)),
  ),
})

const duplicatesOf = (ids: ReadonlyArray<string>): Array<string> => {
  const seen = new Set<string>()
  const duplicates = new Set<string>()
  for (const id of ids) (seen.has(id) ? duplicates : seen).add(id)
  return [...duplicates]
}

const list = (ids: ReadonlyArray<string>): string => ids.map((id) => `"${id}"`).join(", ")

interface Membership {
  readonly clients: ReadonlyArray<string> | "open"
  readonly minSites: number
  readonly requiredSites: ReadonlyArray<string>
}

// The rules between fields. A Schema check on the whole struct runs only once every field decodes,
// so `validate` also runs them on `Membership` alone: a spec with `rounds: 0` and `minSites` above
// its client count reports both problems at once.
const crossField = Schema.makeFilter<Membership>((spec) => {
  const issues: Array<Schema.FilterIssue> = []
  if (spec.clients !== "open") {
    const duplicates = duplicatesOf(spec.clients)
    if (duplicates.length > 0) issues.push({ path: ["clients"], issue: `lists ${list(duplicates)} more than once` })
    const listed = new Set(spec.clients)
    if (spec.minSites > listed.size) {
      issues.push({
        path: ["minSites"],
        issue: `${spec.minSites} exceeds the ${listed.size} site(s) in clients`,
      })
    }
    const unlisted = spec.requiredSites.filter((site) => !listed.has(site))
    if (unlisted.length > 0) {
      issues.push({ path: ["requiredSites"], issue: `${list(unlisted)} not among clients` })
    }
  }
  const duplicateRequired = duplicatesOf(spec.requiredSites)
  if (duplicateRequired.length > 0) {
    issues.push({ path: ["requiredSites"], issue: `lists ${list(duplicateRequired)} more than once` })
  }
  return issues
})

/**
 * The job spec as a Schema (decode it from a config file or a submission
 * body). Fields and defaults:
 *
 * | field | default | meaning |
 * | --- | --- | --- |
 * | `name` | required | the job's name |
 * | `rounds` | required | training rounds, a positive integer |
 * | `model` | required | the model to train |
 * | `clients` | required | site ids, or `"open"` for open enrolment |
 * | `minSites` | required | sites that must deploy, start and join every round; at most the number of clients |
 * | `requiredSites` | `[]` | sites the job cannot run without; each must be among `clients` |
 * | `deployTimeout` | `"60 seconds"` | no deploy reply within it is a deployment failure |
 * | `startTimeout` | `"60 seconds"` | no start reply within it excludes the site |
 * | `roundTimeout` | `"10 minutes"` | the longest a round may take |
 * | `seed` | `0` | the job's random seed |
 *
 * `minSites` need not cover the required sites: `minSites: 2` with three
 * required sites is a valid spec (all three must still be present).
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobSpec = Fields.check(crossField).annotate({ identifier: "JobSpec", description: "a federated job" })

/**
 * A decoded job spec (durations as `Duration`).
 *
 * @since 0.1.0
 * @category models
 */
export type JobSpec = typeof JobSpec.Type

/**
 * A job spec as submitted (durations as strings or milliseconds, defaults
 * omitted).
 *
 * @since 0.1.0
 * @category models
 */
export type JobSpecInput = typeof JobSpec.Encoded

const fieldNames = new Set<string>(Object.keys(Fields.fields))
const toIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    switch (issue._tag) {
      case "MissingKey":
        return "is required"
      case "UnexpectedKey":
        return "is not a job spec field"
      default:
        return SchemaIssue.defaultLeafHook(issue)
    }
  },
})
const decodeAll = Schema.decodeUnknownResult(JobSpec)
const decodeMembership = Schema.decodeUnknownResult(
  Schema.Struct({
    clients: Fields.fields.clients,
    minSites: Fields.fields.minSites,
    requiredSites: Fields.fields.requiredSites,
  }).check(crossField),
)
const options = { errors: "all", onExcessProperty: "error" } as const

// One problem per field: the first issue's path names the field (`clients[3]` is `clients`), and
// a field's several messages are joined, so the count of problems is the count of broken fields.
const problemsOf = (issues: ReadonlyArray<SchemaIssue.Issue>): Array<SpecProblem> => {
  const byField = new Map<string, Array<string>>()
  for (const { path = [], message } of issues.flatMap((issue) => toIssues(issue).issues)) {
    const head = path[0]
    const field = head === undefined ? "spec" : String(head)
    const detail =
      path.length > 1
        ? `${path
            .slice(1)
            .map((key) => `[${String(key)}]`)
            .join("")}: ${message}`
        : message
    const messages = byField.get(field) ?? []
    if (!messages.includes(detail)) messages.push(detail)
    byField.set(field, messages)
  }
  const order = (field: string) => (fieldNames.has(field) ? [...fieldNames].indexOf(field) : fieldNames.size)
  return [...byField.entries()]
    .sort(([a], [b]) => order(a) - order(b))
    .map(([field, messages]) => ({ field, message: messages.join("; ") }))
}

/**
 * Decodes an untrusted spec, collecting every problem: `Failure` with one
 * `InvalidJobSpec` listing one `{ field, message }` per broken field (an
 * unknown key is a problem named after the key; an input that is not an
 * object is the field `"spec"`).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { JobSpec } from "@fedguard/job-lifecycle"
 * const result = JobSpec.validate({ name: "cifar", rounds: 0, model: "resnet", clients: ["a"], minSites: 2 })
 * // Failure with two problems: rounds (must be a positive integer), minSites (2 exceeds the 1 site(s) in clients)
 * Result.isFailure(result)
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const validate = (input: unknown): Result.Result<JobSpec, InvalidJobSpec> =>
  Result.mapError(decodeAll(input, options), (error) => {
    // When a field is broken the whole-spec check did not run: run the cross-field rules on the
    // membership fields alone (a broken membership field was already reported and stays one problem).
    const membership = decodeMembership(input, { errors: "all" })
    const issues = Result.isFailure(membership) ? [error.issue, membership.failure.issue] : [error.issue]
    return new InvalidJobSpec({ problems: problemsOf(issues) })
  })

/**
 * `validate` as an Effect: the spec, or a failure with `InvalidJobSpec`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown): Effect.Effect<JobSpec, InvalidJobSpec> => Effect.fromResult(validate(input))

/**
 * The sites a job deploys to: the spec's `clients`, or, with open
 * enrolment, the `enrolled` sites (in their order, without repeats).
 *
 * @since 0.1.0
 * @category accessors
 */
export const sitesOf = (spec: JobSpec, enrolled: ReadonlyArray<SiteId> = []): ReadonlyArray<SiteId> =>
  spec.clients === "open" ? [...new Set(enrolled)] : spec.clients
