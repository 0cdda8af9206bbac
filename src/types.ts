/** Where a proxied connection or datagram goes: an IP literal or a domain, and a port. */
export interface Destination {
  readonly network: 'tcp' | 'udp'
  /** IPv4 or IPv6 text (no brackets) or a domain name. */
  readonly host: string
  readonly port: number
}

/** What a logger needs to offer; pino's loggers satisfy it. */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  child(bindings: Record<string, unknown>): Logger
}
