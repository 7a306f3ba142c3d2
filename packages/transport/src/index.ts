/**
 * @since 0.1.0
 */
export * as Connection from "./Connection.ts"
export * as Envelope from "./Envelope.ts"
export * as Frame from "./Frame.ts"
export * as FrameCodec from "./FrameCodec.ts"
export * as InMemoryTransport from "./InMemoryTransport.ts"
export * as PeerId from "./PeerId.ts"
export * as Transport from "./Transport.ts"
export * as TransportError from "./TransportError.ts"
