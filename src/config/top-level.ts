// The top level of a config: which sections exist, and the ones ignored or refused as a whole.
import { z } from 'zod'
import { anyValue, ignored, refused } from './keys.js'

/** The top level: sections read on their own are `unknown` here. */
export const topLevelSchema = z.object({
  log: anyValue(),
  inbounds: anyValue(),
  outbounds: anyValue(),
  routing: anyValue(),
  policy: anyValue(),
  transport: anyValue(),
  metrics: anyValue(),
  api: anyValue(),
  dns: anyValue(),
  stats: anyValue(),
  fakedns: ignored('fake DNS needs sniffing, which tsray does not do'),
  observatory: ignored('used only by balancers, which are not supported yet'),
  balancers: ignored('balancers are not supported yet'),
  reverse: refused('not supported yet: tsray has no reverse proxy (bridge/portal)'),
})
