// The top level of a config: which sections exist, and the ones ignored or refused as a whole.
import { z } from 'zod'
import { advised, anyValue, ignored, refused } from './keys.js'

/** The top level: sections read on their own are `unknown` here. */
export const topLevelSchema = z.object({
  log: anyValue(),
  inbounds: anyValue(),
  outbounds: anyValue(),
  routing: anyValue(),
  policy: anyValue(),
  transport: anyValue(),
  metrics: anyValue(),
  api: advised(() => 'ignored: tsray has no gRPC API'),
  dns: anyValue(),
  stats: ignored('tsray counts traffic in its metrics'),
  fakedns: ignored('fake DNS needs sniffing, which tsray does not do'),
  observatory: ignored('used only by balancers, which are not supported yet'),
  balancers: ignored('balancers are not supported yet'),
  reverse: refused('not supported yet: tsray has no reverse proxy (bridge/portal)'),
})
