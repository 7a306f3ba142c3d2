import { assert, describe, it } from "@effect/vitest"
import { Envelope, Transport } from "@fedguard/transport"
import { Effect } from "effect"
import * as NodeTransport from "../src/NodeTransport.ts"
import { cert, key } from "./support/certificate.ts"
import { echoServer, inbox, nextMessage, patternStream } from "./support/fixtures.ts"

const MiB = 1024 * 1024
const timeouts = { writeTimeout: "2 seconds", connectTimeout: "2 seconds", closeTimeout: "500 millis" } as const

// One process plays both roles: it serves TLS with the certificate and, as a client, trusts only it.
const trusting = NodeTransport.layer({ ...timeouts, tls: { server: { key, cert }, client: { ca: cert } } })
const server = NodeTransport.make({ ...timeouts, tls: { server: { key, cert } } })

describe("NodeTransport over TLS", () => {
  it.live("carries messages and an 8 MiB byte stream intact when the client trusts the server's certificate", () =>
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const listener = yield* transport.listen("127.0.0.1:0")
      yield* echoServer(listener)
      const client = yield* transport.connect(listener.address)
      const replies = yield* inbox(client)
      yield* client.send(Envelope.make("hello", "over tls"))
      const echo = yield* nextMessage(replies)
      const receipt = yield* client.sendBytes({ tag: "model" }, patternStream(8 * MiB, MiB))
      const verdict = yield* nextMessage(replies)
      assert.deepStrictEqual(echo.body, { echo: "over tls", bytesIn: 0 })
      assert.strictEqual(receipt.bytes, 8 * MiB)
      assert.deepStrictEqual(verdict.body, { tag: "model", bytes: 8 * MiB, mismatches: 0 })
    }).pipe(Effect.provide(trusting), Effect.timeout("10 seconds")),
  )

  it.live(
    "fails with PeerUnreachable naming the certificate problem when the client does not trust it, and the server keeps serving",
    () =>
      Effect.gen(function* () {
        const listener = yield* server.listen("127.0.0.1:0")
        yield* echoServer(listener)
        const untrusting = NodeTransport.make({ ...timeouts, tls: { client: {} } })
        const plain = NodeTransport.make(timeouts)
        const refused = yield* Effect.flip(untrusting.connect(listener.address))
        const trusted = yield* NodeTransport.make({ ...timeouts, tls: { client: { ca: cert } } }).connect(
          listener.address,
        )
        const replies = yield* inbox(trusted)
        yield* trusted.send(Envelope.make("still there?"))
        const reply = yield* nextMessage(replies)
        // A plain-TCP client gets a connection, but the server drops it at the failed handshake.
        const confused = yield* plain.connect(listener.address)
        const confusedInbox = yield* inbox(confused)
        yield* confused.send(Envelope.make("hello?"))
        const dropped = yield* Effect.flip(nextMessage(confusedInbox))
        assert.strictEqual(refused._tag, "PeerUnreachable")
        assert.match(refused.message, /self[- ]signed/i)
        assert.strictEqual(reply.tag, "echo")
        assert.strictEqual(dropped._tag, "ConnectionClosed")
      }).pipe(Effect.timeout("10 seconds")),
  )
})
