/** Base of every error tsray throws on purpose: `code` is stable, for callers, logs and metrics. */
export class TsrayError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Bytes on the wire that break the protocol (VMess, SOCKS5, HTTP proxy, Mux.Cool, links). */
export class ProtocolError extends TsrayError {}

/** A configuration that cannot be used; `path` is the JSON path of the offending value. */
export class ConfigError extends TsrayError {
  readonly path: string

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', path === '' ? message : `${path}: ${message}`, options)
    this.path = path
  }
}

/** A transport (TCP, TLS, WebSocket) that failed to connect or listen. */
export class TransportError extends TsrayError {}
