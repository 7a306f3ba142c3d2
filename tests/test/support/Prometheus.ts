/**
 * Test support: `/metrics` scraped over HTTP and parsed with
 * `parse-prometheus-text-format` (a port of prom2json's parser), plus the
 * checks that parser leaves out: it accepts almost any line, so a scrape is
 * only "parsed" here when every family has a TYPE, every name is a valid
 * Prometheus name, every value is a number, and every sample line of the
 * text is accounted for by the parsed families.
 */

import { Effect } from "effect"
import parse, { type Family } from "parse-prometheus-text-format"

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const number = (text: string | undefined): boolean =>
  text !== undefined && (text === "+Inf" || text === "-Inf" || text === "NaN" || !Number.isNaN(Number(text)))

const samplesOf = (family: Family): number =>
  family.metrics.reduce(
    (sum, sample) =>
      sum +
      (family.type === "HISTOGRAM"
        ? Object.keys(sample.buckets ?? {}).length + 2
        : family.type === "SUMMARY"
          ? Object.keys(sample.quantiles ?? {}).length + 2
          : 1),
    0,
  )

/** Parses a scrape; throws naming the first thing that is not valid Prometheus text format. */
export const parseStrict = (text: string): ReadonlyArray<Family> => {
  const families = parse(text)
  for (const family of families) {
    if (!metricName.test(family.name)) throw new Error(`invalid metric name ${family.name}`)
    if (family.type === "UNTYPED") throw new Error(`${family.name} has no # TYPE line`)
    for (const sample of family.metrics) {
      const values = [sample.value, sample.count, sample.sum, ...Object.values(sample.buckets ?? {})].filter(
        (value) => value !== undefined,
      )
      if (values.length === 0 || !values.every(number)) throw new Error(`${family.name}: a value is not a number`)
    }
  }
  const lines = text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#")).length
  const parsed = families.reduce((sum, family) => sum + samplesOf(family), 0)
  if (lines !== parsed) throw new Error(`${lines} sample lines in the text, ${parsed} parsed`)
  return families
}

/** The sum of a counter's or gauge's samples whose labels include `labels` (0 when there is none). */
export const sampleValue = (
  families: ReadonlyArray<Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number =>
  (families.find((family) => family.name === name)?.metrics ?? [])
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value))
    .reduce((sum, sample) => sum + Number(sample.value), 0)

/** GET `url` (an HTTP endpoint on 127.0.0.1), its status and body. */
export const httpGet = (url: string) =>
  Effect.tryPromise(() =>
    fetch(url).then((response) =>
      response.text().then((body) => ({
        status: response.status,
        contentType: response.headers.get("content-type"),
        body,
      })),
    ),
  ).pipe(Effect.orDie)
