// `metrics` and `api`.
import { z } from 'zod'
import { anyValue, ignored } from './keys.js'
import { leaf, readMetricsListen, readTag } from './readers.js'

/** `metrics`: Xray's `listen` serves them; its `tag` (metrics through a routed inbound) is not supported. */
export const metricsSchema = z.object({
  listen: leaf(readMetricsListen),
  tag: ignored('tsray serves metrics on metrics.listen only, not through an inbound'),
})

/** `api`: its tag names the routing rule and inbound that serve it; services and listen are read in src/config/operate.ts. */
export const apiSchema = z.object({ tag: leaf(readTag), services: anyValue(), listen: anyValue() })
