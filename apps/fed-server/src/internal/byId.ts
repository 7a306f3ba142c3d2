/**
 * Orders records by their client id: the one order of reports, sessions and
 * aggregation, so a result never depends on arrival order.
 */
export const byId = (a: { readonly id: string }, b: { readonly id: string }): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0
