import type { InboundConfig, OutboundConfig, TsrayConfig } from '../config/schema.js'
import { levelPolicy } from '../config/schema.js'
import { ForwardInbound } from '../inbound/forward.js'
import { HttpInbound } from '../inbound/http.js'
import { Socks5Inbound } from '../inbound/socks5.js'
import { VmessInbound } from '../inbound/vmess.js'
import { cryptoBackend } from '../crypto/index.js'
import { createLogs, type Logs } from '../observe/log.js'
import { createMetrics, type TsrayMetrics } from '../observe/metrics.js'
import { createMetricsServer } from '../observe/metrics-server.js'
import { BlackholeOutbound } from '../outbound/blackhole.js'
import { FreedomOutbound } from '../outbound/freedom.js'
import type { Outbound } from '../outbound/outbound.js'
import { VmessOutbound } from '../outbound/vmess.js'
import { LegacyAuthTable } from '../protocol/legacy-auth.js'
import { AuthIdReplayFilter, SessionHistory } from '../protocol/replay-filter.js'
import { UserDirectory } from '../protocol/user-directory.js'
import { createUser } from '../protocol/user.js'
import { admit, logAdmissionRefusal } from '../inbound/admission.js'
import { createStreamDialer, createStreamServer } from '../transport/stream-settings.js'
import { Instance, type Listener } from './instance.js'
import type { RelayTimeouts } from '../streams/relay.js'
import { Router } from './router.js'
import { DnsResolver } from './dns-resolver.js'
import { OperateRuntime } from './operate.js'
import { reloadInstance, SwitchableDispatcher } from './reload.js'
import type { Dispatcher } from '../outbound/outbound.js'

/** How long an outbound waits for a TCP connect. */
export const CONNECT_TIMEOUT_MS = 10_000

function timeoutsOf(config: TsrayConfig, level: number, override?: number): RelayTimeouts {
  const policy = levelPolicy(config, level)
  return {
    connIdleMs: override !== undefined && level === 0 ? override : policy.connIdleMs,
    uplinkOnlyMs: policy.uplinkOnlyMs,
    downlinkOnlyMs: policy.downlinkOnlyMs,
  }
}

function buildOutbound(config: OutboundConfig, tag: string, dns: DnsResolver, logs: Logs): Outbound {
  const sendThrough = config.sendThrough !== undefined ? { sendThrough: config.sendThrough } : {}
  switch (config.protocol) {
    case 'freedom': {
      const redirect = config.settings.redirect
      return new FreedomOutbound({
        tag,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...(redirect !== undefined ? { redirect } : {}),
        domainStrategy: config.settings.domainStrategy,
        resolve: (host, family) => dns.resolve(host, family),
        ...sendThrough,
      })
    }
    case 'blackhole':
      return new BlackholeOutbound({ tag, httpResponse: config.settings.response === 'http' })
    case 'vmess': {
      return new VmessOutbound({
        tag,
        logger: logs.logger.child({ outbound: tag }),
        ...(config.mux?.enabled === true ? { mux: { concurrency: config.mux.concurrency } } : {}),
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...(config.settings.maxChunkLength !== undefined
          ? { maxChunkLength: config.settings.maxChunkLength }
          : {}),
        dial: createStreamDialer(config.stream, {
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          ...(config.sendThrough !== undefined ? { localAddress: config.sendThrough } : {}),
        }),
        servers: config.settings.vnext.map((server) => ({
          host: server.address,
          port: server.port,
          users: server.users.map((user) => ({
            user: createUser({ id: user.id, alterId: user.alterId, level: user.level }),
            legacy: user.alterId > 0,
            security: user.security,
          })),
        })),
      })
    }
  }
}

function buildInbound(
  config: TsrayConfig,
  inbound: InboundConfig,
  tag: string,
  router: Dispatcher,
  logs: Logs,
  metrics: TsrayMetrics | undefined,
  operate: OperateRuntime,
): Listener {
  const logger = logs.logger.child({ inbound: tag })
  const onAccess =
    logs.access === undefined && metrics === undefined
      ? undefined
      : (record: Parameters<NonNullable<Logs['access']>>[0]) => {
          if (record.status === 'accepted') metrics?.tunnelAccepted(tag)
          logs.access?.({ ...record, inboundTag: tag })
        }
  const common = {
    tag,
    listen: inbound.listen,
    port: inbound.port,
    dispatcher: router,
    handshakeTimeoutMs: levelPolicy(config, 0).handshakeMs,
    logger,
    ...(onAccess !== undefined ? { onAccess } : {}),
  }
  switch (inbound.protocol) {
    case 'vmess': {
      const settings = inbound.settings
      const users = settings.clients.map((client) =>
        createUser({
          id: client.id,
          alterId: client.alterId,
          level: client.level,
          email: client.email ?? '',
        }),
      )
      const vmess = new VmessInbound({
        tag,
        handshakeTimeoutMs: common.handshakeTimeoutMs,
        dispatcher: router,
        logger,
        ...(onAccess !== undefined ? { onAccess } : {}),
        users: new UserDirectory(users),
        legacy: settings.legacyHeader === 'refuse' ? undefined : new LegacyAuthTable(users),
        legacyPolicy: settings.legacyHeader,
        authIds: new AuthIdReplayFilter(),
        sessions: new SessionHistory(),
        disableInsecureEncryption: settings.disableInsecureEncryption,
        timeouts: (user) => timeoutsOf(config, user.level),
        ...(metrics !== undefined ? { metrics: metrics.vmessInbound(tag) } : {}),
      })
      operate.inbound(tag, vmess)
      const server = createStreamServer(inbound.stream, {
        listen: inbound.listen,
        port: inbound.port,
        onStream: admit(
          inbound.admission,
          (stream, peer) => {
            metrics?.countBytes(tag, stream)
            vmess.accept(stream, peer)
          },
          (peer) => {
            metrics?.vmessInbound(tag).refused('ADMISSION_LIMIT')
            logAdmissionRefusal(logger, peer)
          },
        ),
        logger,
      })
      return { tag, protocol: 'vmess', listen: () => server.listen(), close: (grace) => server.close(grace) }
    }
    case 'socks': {
      const settings = inbound.settings
      const socks = new Socks5Inbound({
        ...common,
        ...(inbound.admission !== undefined ? { admission: inbound.admission } : {}),
        timeouts: timeoutsOf(config, settings.userLevel, settings.timeoutMs),
        accounts: new Map(settings.auth === 'password' ? settings.accounts.map((a) => [a.user, a.pass]) : []),
        udp: settings.udp,
        ...(settings.ip !== undefined ? { udpAddress: settings.ip } : {}),
      })
      return { tag, protocol: 'socks', listen: () => socks.listen(), close: (grace) => socks.close(grace) }
    }
    case 'http': {
      const settings = inbound.settings
      const http = new HttpInbound({
        ...common,
        ...(inbound.admission !== undefined ? { admission: inbound.admission } : {}),
        timeouts: timeoutsOf(config, settings.userLevel, settings.timeoutMs),
        accounts: new Map(settings.accounts.map((a) => [a.user, a.pass])),
      })
      return { tag, protocol: 'http', listen: () => http.listen(), close: (grace) => http.close(grace) }
    }
    case 'dokodemo-door': {
      const settings = inbound.settings
      const timeouts = timeoutsOf(config, settings.userLevel, settings.timeoutMs)
      const forward = new ForwardInbound({
        ...common,
        ...(inbound.admission !== undefined ? { admission: inbound.admission } : {}),
        timeouts,
        target: { host: settings.address, port: settings.port },
        tcp: settings.networks.includes('tcp'),
        udp: settings.networks.includes('udp'),
        udpIdleMs: timeouts.connIdleMs,
      })
      return {
        tag,
        protocol: 'dokodemo-door',
        listen: () => forward.listen(),
        close: (grace) => forward.close(grace),
      }
    }
  }
}

/** The router of a config's rules over built outbounds. */
function routerOf(
  config: TsrayConfig,
  outbounds: ReadonlyMap<string, Outbound>,
  defaultOutbound: Outbound,
  dns: DnsResolver,
): Router {
  return new Router({
    rules: config.routing.rules.map((rule) => ({
      outboundTag: rule.outboundTag,
      ...(rule.inboundTag !== undefined ? { inboundTags: rule.inboundTag } : {}),
      ...(rule.domain !== undefined ? { domains: rule.domain } : {}),
      ...(rule.ip !== undefined ? { ips: rule.ip } : {}),
      ...(rule.port !== undefined ? { ports: rule.port.map((r) => [r.from, r.to] as const) } : {}),
      ...(rule.sourcePort !== undefined
        ? { sourcePorts: rule.sourcePort.map((r) => [r.from, r.to] as const) }
        : {}),
      ...(rule.network !== undefined ? { networks: rule.network } : {}),
      ...(rule.user !== undefined ? { users: rule.user } : {}),
      ...(rule.source !== undefined ? { sources: rule.source } : {}),
    })),
    outbounds,
    defaultOutbound,
    domainStrategy: config.routing.domainStrategy,
    resolve: (host) => dns.resolve(host),
    // The metrics endpoint is for the operator, never for a tunnel's user.
    ...(config.metrics !== undefined
      ? { protectedEndpoints: [{ host: config.metrics.listen.address, port: config.metrics.listen.port }] }
      : {}),
  })
}

/** The cipher path (native addon or node:crypto) is logged by the first instance only. */
let cipherPathLogged = false

/** Builds a runnable instance from a validated config: the one place that switches on protocol names. */
export function buildInstance(
  config: TsrayConfig,
  options?: { logs?: Logs; metrics?: TsrayMetrics },
): Instance {
  const logs = options?.logs ?? createLogs(config.log)
  if (!cipherPathLogged) {
    cipherPathLogged = true
    logs.logger.debug({ ciphers: cryptoBackend().detail }, 'cipher path')
  }
  // A metrics endpoint in the config serves the given metrics, or its own.
  const metrics = options?.metrics ?? (config.metrics === undefined ? undefined : createMetrics())
  metrics?.logLinesDropped(() => logs.droppedLines)
  const dns = new DnsResolver(config.dns)
  const operate = new OperateRuntime(config)
  const stats = operate.stats
  if (stats !== undefined) metrics?.trafficCounters(() => stats.totals())
  const outbounds = new Map<string, Outbound>()
  const ordered = config.outbounds.map((outbound, index) => {
    const built = operate.outbound(buildOutbound(outbound, outbound.tag ?? `outbound-${index}`, dns, logs))
    outbounds.set(built.tag, built)
    return built
  })
  const defaultOutbound =
    ordered[0] ?? new FreedomOutbound({ tag: 'direct', connectTimeoutMs: CONNECT_TIMEOUT_MS })
  const routing = new SwitchableDispatcher(routerOf(config, outbounds, defaultOutbound, dns))
  const listeners = config.inbounds.map((inbound, index) => {
    const tag = inbound.tag ?? `inbound-${index}`
    if (inbound.protocol !== 'vmess') operate.inbound(tag)
    return buildInbound(config, inbound, tag, operate.dispatcher(tag, routing), logs, metrics, operate)
  })
  const api = operate.apiListener(logs)
  if (api !== undefined) listeners.push(api)
  if (config.metrics !== undefined && metrics !== undefined) {
    const server = createMetricsServer(metrics.registry, {
      ...config.metrics.listen,
      logger: logs.logger.child({ component: 'metrics' }),
    })
    listeners.push({
      tag: 'metrics',
      protocol: 'metrics',
      listen: () => server.listen(),
      close: () => server.close(),
    })
  }
  let live = config
  const reload = (next: TsrayConfig) => {
    const report = reloadInstance(live, next, {
      vmessInbound: (tag) => operate.vmessInbound(tag),
      replaceRouting: (changed) => routing.replace(routerOf(changed, outbounds, defaultOutbound, dns)),
    })
    // Users are compared with the running inbounds; routing with what was applied last.
    live = { ...live, routing: next.routing }
    return report
  }
  return new Instance({ listeners, logs, reload })
}
