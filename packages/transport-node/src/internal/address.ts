/**
 * `"host:port"` addresses: parsing what users pass to `connect` / `listen`,
 * and formatting what Node reports back.
 */

/** A parsed TCP address. IPv6 hosts are stored without their brackets. */
export interface HostPort {
  readonly host: string
  readonly port: number
}

// host: a name, an IPv4 literal or a bracketed IPv6 literal; port: 0..65535 in decimal.
const pattern = /^(?:\[([0-9A-Fa-f:.%\w]+)\]|([^\s:[\]]+)):(\d{1,5})$/

/**
 * Parses `"127.0.0.1:7070"`, `"localhost:0"` or `"[::1]:7070"`; `undefined`
 * when the string is not an address or the port is out of range.
 */
export const parse = (address: string): HostPort | undefined => {
  const match = pattern.exec(address)
  if (match === null) return undefined
  const host = match[1] ?? match[2]
  const port = Number(match[3])
  if (host === undefined || port > 65535) return undefined
  return { host, port }
}

/** Formats a host and port back into the `"host:port"` form, bracketing IPv6 literals. */
export const format = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
