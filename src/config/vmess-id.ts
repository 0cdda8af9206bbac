// Two ways a VMess id goes wrong without looking wrong: a UUID cut short when copied (which Xray's
// UUIDv5 mapping would turn into a valid user no client has) and an `env:NAME` whose variable is unset.

/** Hex groups joined by dashes, or a long run of hex: a UUID's shape. */
const UUID_LIKE_PATTERN = /^(?:[0-9a-f]+(?:-[0-9a-f]*)+|-[0-9a-f-]*|[0-9a-f]{20,})$/i
const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i

/** Why `id` cannot be a VMess id although it is a short string, or undefined when it can. */
export function idTextProblem(id: string): string | undefined {
  if (id.startsWith('env:')) return `${JSON.stringify(id)} names an environment variable that is not set`
  if (!UUID_PATTERN.test(id) && UUID_LIKE_PATTERN.test(id)) {
    const digits = id.replaceAll('-', '').length
    return `${JSON.stringify(id)} looks like a cut UUID (${digits} hex digits, a UUID has 32); copy the whole id`
  }
  return undefined
}

/** The value of `"id": "env:NAME"`, or the text itself (an unset variable stays, for the schema to report). */
export function resolveIdText(id: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof id !== 'string' || !id.startsWith('env:')) return id
  return env[id.slice('env:'.length)] ?? id
}

type Json = Record<string, unknown>

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A copy of `object` with the key spelled `name` in any case (as V2Ray's JSON reads keys) mapped by `change`. */
function mapKey(object: unknown, name: string, change: (value: unknown) => unknown): unknown {
  if (!isObject(object)) return object
  const key = Object.keys(object).find((candidate) => candidate.toLowerCase() === name.toLowerCase())
  if (key === undefined) return object
  return { ...object, [key]: change(object[key]) }
}

function mapEach(list: unknown, change: (value: unknown) => unknown): unknown {
  return Array.isArray(list) ? list.map(change) : list
}

/**
 * Replaces `"id": "env:NAME"` of VMess inbound clients and outbound users with the variable's value, as
 * V2Ray does for ports, so a secret can stay out of the file.
 */
export function resolveIdsFromEnv(raw: Json, env: Readonly<Record<string, string | undefined>>): Json {
  const id = (user: unknown): unknown => mapKey(user, 'id', (value) => resolveIdText(value, env))
  const inbound = (entry: unknown): unknown =>
    mapKey(entry, 'settings', (settings) => mapKey(settings, 'clients', (clients) => mapEach(clients, id)))
  const outbound = (entry: unknown): unknown =>
    mapKey(entry, 'settings', (settings) =>
      // Xray's short form carries the id in `settings` itself, without vnext.
      id(
        mapKey(settings, 'vnext', (vnext) =>
          mapEach(vnext, (server) => mapKey(server, 'users', (users) => mapEach(users, id))),
        ),
      ),
    )
  const withInbounds = mapKey(raw, 'inbounds', (list) => mapEach(list, inbound))
  return mapKey(withInbounds, 'outbounds', (list) => mapEach(list, outbound)) as Json
}
