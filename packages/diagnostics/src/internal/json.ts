import type { Schema } from "effect"

/**
 * Whether collected data carries nothing worth reporting: `null`, an empty
 * string, an empty array or an object without keys.
 */
export const isEmptyJson = (value: Schema.Json): boolean => {
  if (value === null || value === "") return true
  if (Array.isArray(value)) return value.length === 0
  if (typeof value === "object") return Object.keys(value).length === 0
  return false
}

/** The length in bytes of a value's JSON text (UTF-8). */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? "", "utf8")
