// The V2Ray v4 JSON config as tsray reads it, one module per concern: `types` (the typed result),
// `paths` and `readers` (JSON paths, value readers), `keys` (key rules, the key-level reading), and one
// module per section. This module gathers what the loader, the runtime and the tests use.
export type {
  LogLevel,
  LogOutput,
  LogConfig,
  HttpHeaderField,
  HttpHeaderConfig,
  WebSocketConfig,
  HttpUpgradeConfig,
  PemSource,
  TlsCertificateConfig,
  TlsConfig,
  StreamSecurityConfig,
  StreamConfig,
  Account,
  Network,
  LegacyHeaderMode,
  VmessClient,
  VmessInboundSettings,
  SocksInboundSettings,
  HttpInboundSettings,
  DokodemoInboundSettings,
  InboundCommon,
  VmessInboundConfig,
  SocksInboundConfig,
  HttpInboundConfig,
  DokodemoInboundConfig,
  InboundConfig,
  InboundProtocol,
  FreedomDomainStrategy,
  FreedomOutboundSettings,
  BlackholeOutboundSettings,
  VmessUser,
  VmessServer,
  VmessOutboundSettings,
  OutboundCommon,
  MuxConfig,
  FreedomOutboundConfig,
  BlackholeOutboundConfig,
  VmessOutboundConfig,
  OutboundConfig,
  OutboundProtocol,
  RoutingDomainStrategy,
  PortRange,
  RoutingRule,
  RoutingConfig,
  LevelPolicy,
  PolicyConfig,
  EffectivePolicy,
  MetricsConfig,
  TsrayConfig,
} from './types.js'
export { INBOUND_PROTOCOLS, OUTBOUND_PROTOCOLS } from './types.js'
export type { JsonPath, ConfigProblem, ConfigReport } from './paths.js'
export { formatJsonPath, describeValue, lookupKey } from './paths.js'
export { CANONICAL_UUID_PATTERN } from './readers.js'
export type { KeyRule } from './keys.js'
export { normaliseKeys, describeIssue, readSection } from './keys.js'
export { DEFAULT_LOG_CONFIG, logSchema } from './log.js'
export { streamSettingsSchema, streamProblems, transportSchema } from './stream-settings.js'
export {
  inboundProtocolSchema,
  inboundSchema,
  vmessInboundSettingsSchema,
  socksInboundSettingsSchema,
  httpInboundSettingsSchema,
  dokodemoInboundSettingsSchema,
  inboundSettingsSchemas,
} from './inbounds.js'
export {
  outboundProtocolSchema,
  outboundSchema,
  freedomOutboundSettingsSchema,
  blackholeOutboundSettingsSchema,
  vmessOutboundSettingsSchema,
  outboundSettingsSchemas,
} from './outbounds.js'
export { routingRuleSchema, routingSchema } from './routing.js'
export { levelPolicy, policySchema } from './policy.js'
export { metricsSchema, apiSchema } from './api-stats.js'
export { topLevelSchema } from './top-level.js'
export type { DnsConfig, DnsHostConfig, DnsQueryStrategy, DnsServerConfig } from './types.js'
export { dnsSchema } from './dns.js'
export { CONFIG_SECTIONS } from './sections.js'
