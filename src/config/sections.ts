// Every schema the loader reads a config with, by where it applies: what the README's key table is checked
// against (test/config/readme-keys.test.ts).
import type { z } from 'zod'
import { apiSchema, metricsSchema } from './api-stats.js'
import { dnsSchema } from './dns.js'
import {
  dokodemoInboundSettingsSchema,
  httpInboundSettingsSchema,
  inboundSchema,
  socksInboundSettingsSchema,
  vmessInboundSettingsSchema,
} from './inbounds.js'
import { logSchema } from './log.js'
import {
  blackholeOutboundSettingsSchema,
  freedomOutboundSettingsSchema,
  outboundSchema,
  vmessOutboundSettingsSchema,
} from './outbounds.js'
import { policySchema } from './policy.js'
import { routingSchema } from './routing.js'
import { transportSchema } from './stream-settings.js'
import { topLevelSchema } from './top-level.js'

/** Section name (a JSON path, with the protocol for settings) → its schema. */
export const CONFIG_SECTIONS: Readonly<Record<string, z.ZodType>> = {
  '': topLevelSchema,
  log: logSchema,
  'inbounds[]': inboundSchema,
  'inbounds[].settings (vmess)': vmessInboundSettingsSchema,
  'inbounds[].settings (socks)': socksInboundSettingsSchema,
  'inbounds[].settings (http)': httpInboundSettingsSchema,
  'inbounds[].settings (dokodemo-door)': dokodemoInboundSettingsSchema,
  'outbounds[]': outboundSchema,
  'outbounds[].settings (vmess)': vmessOutboundSettingsSchema,
  'outbounds[].settings (freedom)': freedomOutboundSettingsSchema,
  'outbounds[].settings (blackhole)': blackholeOutboundSettingsSchema,
  routing: routingSchema,
  policy: policySchema,
  dns: dnsSchema,
  metrics: metricsSchema,
  api: apiSchema,
  transport: transportSchema,
}
