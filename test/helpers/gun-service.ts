// A gRPC peer that tsray did not write: @grpc/grpc-js with the gun service loaded by @grpc/proto-loader from a
// .proto written here from the published field numbers (Hunk and MultiHunk carry `bytes data = 1`; Xray's
// service has Tun and TunMulti, v2fly's GunService has Tun). The service name on the wire is replaced by the
// configured serviceName, as Xray and V2Ray do, by rewriting the method paths.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

const GUN_PROTO = `syntax = "proto3";
package tsray.test.gun;
message Hunk { bytes data = 1; }
message MultiHunk { repeated bytes data = 1; }
service GunService {
  rpc Tun (stream Hunk) returns (stream Hunk);
  rpc TunMulti (stream MultiHunk) returns (stream MultiHunk);
}
`

/** A call of Tun or TunMulti as grpc-js gives it: objects with `data` in and out. */
export type GunCall =
  grpc.ClientDuplexStream<GunMessage, GunMessage> | grpc.ServerDuplexStream<GunMessage, GunMessage>

/** Hunk (`data` one Buffer) or MultiHunk (`data` a list). */
export interface GunMessage {
  data?: Buffer | Buffer[]
}

/** The gun service definition with the method paths of `serviceName` (`/<serviceName>/Tun`, `/TunMulti`). */
export function gunServiceDefinition(serviceName: string): grpc.ServiceDefinition {
  const dir = mkdtempSync(join(tmpdir(), 'tsray-gun-'))
  try {
    const file = join(dir, 'gun.proto')
    writeFileSync(file, GUN_PROTO)
    const definition = protoLoader.loadSync(file, { keepCase: true })
    const service = definition['tsray.test.gun.GunService'] as grpc.ServiceDefinition
    return Object.fromEntries(
      Object.entries(service).map(([name, method]) => [name, { ...method, path: `/${serviceName}/${name}` }]),
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The data bytes of a Hunk or MultiHunk. */
export function messageData(message: GunMessage): Buffer {
  const data = message.data
  if (data === undefined) return Buffer.alloc(0)
  return Array.isArray(data) ? Buffer.concat(data) : data
}

/** A grpc-js client constructor for the gun service under `serviceName`. */
export function gunClient(serviceName: string): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(gunServiceDefinition(serviceName), 'GunService')
}

/** Starts a Tun or TunMulti call on a client made by `gunClient`. */
export function openGunCall(
  client: grpc.Client,
  method: 'Tun' | 'TunMulti',
): grpc.ClientDuplexStream<GunMessage, GunMessage> {
  const start = (client as unknown as Record<string, () => grpc.ClientDuplexStream<GunMessage, GunMessage>>)[
    method
  ]
  if (start === undefined) throw new Error(`the gun client has no ${method}`)
  return start.call(client)
}

export { grpc }
