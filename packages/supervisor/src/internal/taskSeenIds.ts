/**
 * The payload message ids an end has delivered, for de-duplication: a
 * resend arrives within `maxResends × resendInterval` of its first copy,
 * and payloads travel one (or a few) at a time, so the last `capacity` ids
 * are enough; older ones are forgotten, which keeps a peer that numbers its
 * messages without end from growing our memory.
 */
export interface SeenIds {
  readonly has: (id: number) => boolean
  readonly add: (id: number) => void
}

export const makeSeenIds = (capacity = 4096): SeenIds => {
  const ids = new Set<number>()
  return {
    has: (id) => ids.has(id),
    add: (id) => {
      ids.add(id)
      if (ids.size > capacity) {
        // A Set iterates in insertion order: the first is the oldest.
        const oldest = ids.values().next()
        if (oldest.done !== true) ids.delete(oldest.value)
      }
    },
  }
}
