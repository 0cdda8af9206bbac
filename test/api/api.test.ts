import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { apiClient, failureOf } from '../helpers/api-client.js'
import { connectTcp, randomData, readExactly, startEchoServer } from '../helpers/net.js'
import { echoThrough } from '../helpers/transfer.js'
import { startTsray } from '../helpers/tsray.js'
import { freePort, startV2ray, type V2rayProcess } from '../helpers/v2ray.js'

const USER_A = { email: 'a@test', id: randomUUID() }
const USER_B = { email: 'b@test', id: randomUUID() }

/** A server config as the panels write it: stats, the API on a dokodemo-door inbound, a rule to it. */
function serverConfig(ports: { api: number; vmess: number }): object {
  return {
    stats: {},
    api: { tag: 'api', services: ['HandlerService', 'StatsService'] },
    policy: {
      levels: { '0': { statsUserUplink: true, statsUserDownlink: true, statsUserOnline: true } },
      system: {
        statsInboundUplink: true,
        statsInboundDownlink: true,
        statsOutboundUplink: true,
        statsOutboundDownlink: true,
      },
    },
    inbounds: [
      {
        tag: 'api',
        listen: '127.0.0.1',
        port: ports.api,
        protocol: 'dokodemo-door',
        settings: { address: '127.0.0.1' },
      },
      {
        tag: 'vin',
        listen: '127.0.0.1',
        port: ports.vmess,
        protocol: 'vmess',
        settings: { clients: [{ ...USER_A, alterId: 0 }] },
      },
    ],
    outbounds: [{ tag: 'direct', protocol: 'freedom' }],
    routing: { rules: [{ type: 'field', inboundTag: ['api'], outboundTag: 'api' }] },
  }
}

/** A V2Ray 4.34 client: a dokodemo-door port to `target` through the VMess server as `user`. */
async function startClient(
  user: { id: string },
  server: number,
  target: number,
  sendThrough?: string,
): Promise<{ port: number; v2ray: V2rayProcess }> {
  const port = await freePort()
  const v2ray = await startV2ray(
    {
      inbounds: [
        {
          listen: '127.0.0.1',
          port,
          protocol: 'dokodemo-door',
          settings: { address: '127.0.0.1', port: target, network: 'tcp' },
        },
      ],
      outbounds: [
        {
          protocol: 'vmess',
          ...(sendThrough !== undefined ? { sendThrough } : {}),
          settings: {
            vnext: [
              { address: '127.0.0.1', port: server, users: [{ id: user.id, security: 'aes-128-gcm' }] },
            ],
          },
        },
      ],
    },
    { waitPort: port },
  )
  return { port, v2ray }
}

/** Sends `data` on an open tunnel to the echo server and reads it back, leaving the tunnel open. */
function echoOnce(socket: Socket, data: Buffer): Promise<Buffer> {
  socket.write(data)
  return readExactly(socket, data.length)
}

function portOf(bound: readonly { tag: string; port: number }[], tag: string): number {
  const found = bound.find((listener) => listener.tag === tag)
  assert.ok(found !== undefined, `no listener tagged ${tag}`)
  return found.port
}

/** Resolves when `socket` closes without a byte received; rejects on data, or when still open after `timeoutMs`. */
function closedWithin(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the tunnel stayed open')), timeoutMs)
    socket.on('data', () => {
      clearTimeout(timer)
      reject(new Error('the tunnel carried data'))
    })
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on('error', () => undefined)
  })
}

describe('the gRPC API as the panels call it', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>
  let server: Awaited<ReturnType<typeof startTsray>>
  let clientA: Awaited<ReturnType<typeof startClient>>
  let clientB: Awaited<ReturnType<typeof startClient>>
  let xray: ReturnType<typeof apiClient>
  let v2ray: ReturnType<typeof apiClient>

  before(async () => {
    echo = await startEchoServer()
    server = await startTsray(serverConfig({ api: await freePort(), vmess: await freePort() }))
    const vmessPort = portOf(server.bound, 'vin')
    clientA = await startClient(USER_A, vmessPort, echo.port)
    // From 127.0.0.2: Xray leaves the loopback address 127.0.0.1 out of its online maps.
    clientB = await startClient(USER_B, vmessPort, echo.port, '127.0.0.2')
    xray = apiClient(portOf(server.bound, 'api'), 'xray')
    v2ray = apiClient(portOf(server.bound, 'api'), 'v2ray')
  })

  after(async () => {
    xray?.close()
    v2ray?.close()
    await clientA?.v2ray.stop()
    await clientB?.v2ray.stop()
    await server?.stop()
    await echo?.close()
  })

  test('a user added over the API connects at once, is counted, and once removed is refused while another tunnel keeps echoing', async () => {
    assert.equal(await xray.inboundUsersCount('vin'), 1)
    await assert.rejects(echoThrough(clientB.port, randomData(2000), 8_000), 'B is not a user yet')

    // 3x-ui and Marzban add users with AlterInbound + AddUserOperation, the account a TypedMessage.
    await xray.addUser('vin', USER_B)
    assert.equal(await xray.inboundUsersCount('vin'), 2)
    assert.deepEqual(await failureOf(xray.addUser('vin', USER_B)), {
      code: 2,
      details: 'proxy/vmess/inbound: User b@test already exists.',
    })
    assert.deepEqual(await failureOf(v2ray.addUser('vin', { ...USER_B, email: 'B@TEST' })), {
      code: 2,
      details: 'v2ray.com/core/proxy/vmess/inbound: User B@TEST already exists.',
    })

    // A's tunnel stays open through everything that follows.
    const tunnelA = await connectTcp(clientA.port)
    const first = randomData(1000)
    assert.deepEqual(await echoOnce(tunnelA, first), first)

    const tunnelB = await connectTcp(clientB.port)
    const data = randomData(20_000)
    assert.deepEqual(await echoOnce(tunnelB, data), data)
    // While B's tunnel is open it is online, from 127.0.0.2.
    assert.deepEqual(await xray.statsOnline('user>>>b@test>>>online'), {
      name: 'user>>>b@test>>>online',
      value: 1,
    })
    const ips = await xray.onlineIpList('user>>>b@test>>>online')
    assert.deepEqual([...ips.ips.keys()], ['127.0.0.2'])
    assert.ok(Math.abs(ips.ips.get('127.0.0.2')! - Date.now() / 1000) < 60)
    assert.deepEqual(await xray.allOnlineUsers(), ['user>>>b@test>>>online'])
    const usersStats = await xray.usersStats(true)
    assert.equal(usersStats.length, 1)
    assert.equal(usersStats[0]!.email, 'b@test')
    assert.deepEqual(usersStats[0]!.traffic, { uplink: 20_000, downlink: 20_000 })
    tunnelB.destroy()

    // Payload bytes, as V2Ray counts a user's link.
    assert.deepEqual(await v2ray.getStats('user>>>b@test>>>traffic>>>uplink'), {
      name: 'user>>>b@test>>>traffic>>>uplink',
      value: 20_000,
    })
    const inbound = await v2ray.getStats('inbound>>>vin>>>traffic>>>downlink')
    assert.ok(inbound.value >= 21_000, `inbound downlink ${inbound.value}`)
    const outbound = await v2ray.getStats('outbound>>>direct>>>traffic>>>uplink')
    assert.ok(outbound.value >= 21_000, `outbound uplink ${outbound.value}`)

    // Marzban reads and resets in one QueryStats; the reset returns the old values.
    const reset = await xray.queryStats('user>>>b@test>>>', true)
    assert.deepEqual(reset.map((stat) => [stat.name, stat.value]).sort(), [
      ['user>>>b@test>>>traffic>>>downlink', 20_000],
      ['user>>>b@test>>>traffic>>>uplink', 20_000],
    ])
    assert.equal((await xray.getStats('user>>>b@test>>>traffic>>>uplink')).value, 0)

    await xray.removeUser('vin', 'b@test')
    assert.deepEqual(await failureOf(xray.removeUser('vin', 'b@test')), {
      code: 2,
      details: 'proxy/vmess/inbound: User b@test not found.',
    })
    assert.deepEqual(
      (await xray.inboundUsers('vin')).map((user) => [user.email, user.id, user.type]),
      [[USER_A.email, USER_A.id, 'xray.proxy.vmess.Account']],
    )
    // A new handshake as B is refused: the request ends and the connection closes without a byte
    // back (accepted, the echo would have answered before the close).
    const refused = await connectTcp(clientB.port)
    const closed = closedWithin(refused, 15_000)
    refused.end(randomData(4000))
    await closed
    // The counters outlive the user.
    assert.equal((await xray.getStats('user>>>b@test>>>traffic>>>uplink')).value, 0)
    // And A's open tunnel still echoes.
    const later = randomData(3000)
    assert.deepEqual(await echoOnce(tunnelA, later), later)
    tunnelA.destroy()
  })

  test('unknown names, handlers and methods fail with the codes and texts of V2Ray and Xray', async () => {
    assert.deepEqual(await failureOf(v2ray.getStats('nope')), {
      code: 2,
      details: 'v2ray.com/core/app/stats/command: nope not found.',
    })
    assert.deepEqual(await failureOf(xray.getStats('nope')), { code: 5, details: 'nope not found.' })
    assert.deepEqual(await failureOf(xray.addUser('nope', USER_B)), {
      code: 2,
      details:
        'app/proxyman/command: failed to get handler: nope > app/proxyman/inbound: handler not found: nope',
    })
    assert.deepEqual(await failureOf(v2ray.removeUser('api', 'x')), {
      code: 2,
      details: 'v2ray.com/core/app/proxyman/command: proxy is not a UserManager',
    })
    assert.equal((await failureOf(xray.addInbound())).code, 12)
    const sys = await v2ray.sysStats()
    assert.ok(sys.sys > 0 && sys.alloc > 0, JSON.stringify(sys))
  })
})

function v2ctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/v2ctl', args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(
          new Error(
            `v2ctl 4.34 is needed and did not run (${error.message}): run \`apt-get update && apt-get install -y v2ray\``,
          ),
        )
        return
      }
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })
}

describe('v2ctl 4.34 and a gRPC client against tsray and against V2Ray 4.34', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>
  let tsray: Awaited<ReturnType<typeof startTsray>>
  let reference: V2rayProcess
  let ports: { tsray: number; v2ray: number }

  before(async () => {
    echo = await startEchoServer()
    tsray = await startTsray(serverConfig({ api: await freePort(), vmess: await freePort() }))
    const v2rayPorts = { api: await freePort(), vmess: await freePort() }
    reference = await startV2ray(serverConfig(v2rayPorts), { waitPort: v2rayPorts.api })
    ports = { tsray: portOf(tsray.bound, 'api'), v2ray: v2rayPorts.api }
  })

  after(async () => {
    await reference?.stop()
    await tsray?.stop()
    await echo?.close()
  })

  test('QueryStats, GetStats and GetSysStats print what V2Ray prints', async () => {
    const query = async (port: number) =>
      v2ctl(['api', `--server=127.0.0.1:${port}`, 'StatsService.QueryStats', 'pattern: "" reset: false'])
    const names = (text: string) =>
      [...text.matchAll(/name: "([^"]+)"/g)]
        .map((match) => match[1]!)
        // V2Ray counts the API's own dokodemo-door inbound; tsray serves the API without one.
        .filter((name) => !name.startsWith('inbound>>>api>>>'))
        .sort()
    const [ours, theirs] = [await query(ports.tsray), await query(ports.v2ray)]
    assert.equal(ours.code, 0, ours.stderr)
    assert.equal(theirs.code, 0, theirs.stderr)
    // No user has had traffic: only the inbound and outbound counters, at zero.
    assert.deepEqual(names(ours.stdout), names(theirs.stdout))
    assert.deepEqual(names(ours.stdout), [
      'inbound>>>vin>>>traffic>>>downlink',
      'inbound>>>vin>>>traffic>>>uplink',
      'outbound>>>direct>>>traffic>>>downlink',
      'outbound>>>direct>>>traffic>>>uplink',
    ])

    const missing = async (port: number) =>
      v2ctl(['api', `--server=127.0.0.1:${port}`, 'StatsService.GetStats', 'name: "nope" reset: false'])
    const [ourMissing, theirMissing] = [await missing(ports.tsray), await missing(ports.v2ray)]
    assert.equal(ourMissing.code, theirMissing.code)
    assert.notEqual(ourMissing.code, 0)
    assert.equal(ourMissing.stderr.trim().split('\n').at(-1), theirMissing.stderr.trim().split('\n').at(-1))
    assert.match(
      ourMissing.stderr,
      /code = Unknown desc = v2ray\.com\/core\/app\/stats\/command: nope not found\./,
    )

    const found = await v2ctl([
      'api',
      `--server=127.0.0.1:${ports.tsray}`,
      'StatsService.GetStats',
      'name: "inbound>>>vin>>>traffic>>>uplink" reset: false',
    ])
    assert.equal(found.stdout.trim(), 'stat: <\n  name: "inbound>>>vin>>>traffic>>>uplink"\n>')

    const sys = async (port: number) =>
      v2ctl(['api', `--server=127.0.0.1:${port}`, 'StatsService.GetSysStats', ''])
    const fields = (text: string) => [...text.matchAll(/^(\w+):/gm)].map((match) => match[1]!)
    const [ourSys, theirSys] = [await sys(ports.tsray), await sys(ports.v2ray)]
    assert.equal(ourSys.code, 0, ourSys.stderr)
    // Zero fields are left out of the text format; the ones tsray fills are V2Ray's, in its order.
    const theirFields = fields(theirSys.stdout)
    for (const field of ['Alloc', 'TotalAlloc', 'Sys'])
      assert.ok(fields(ourSys.stdout).includes(field), ourSys.stdout)
    assert.deepEqual(
      fields(ourSys.stdout),
      theirFields.filter((field) => fields(ourSys.stdout).includes(field)),
    )
  })

  test('user changes fail with the same codes and texts as V2Ray 4.34', async () => {
    const calls = async (port: number) => {
      const client = apiClient(port, 'v2ray')
      const user = { email: 'c@test', id: randomUUID() }
      try {
        await client.addUser('vin', user)
        return [
          await failureOf(client.addUser('vin', user)),
          await failureOf(client.addUser('vin', { email: 'd@test', id: 'not-a-uuid' })),
          await failureOf(client.addUser('nope', user)),
          await failureOf(client.addUser('api', user)),
          await client.removeUser('vin', 'C@TEST').then(() => 'removed'),
          await failureOf(client.removeUser('vin', 'c@test')),
          await failureOf(client.removeUser('vin', '')),
        ]
      } finally {
        client.close()
      }
    }
    const ours = await calls(ports.tsray)
    assert.deepEqual(ours, await calls(ports.v2ray))
    assert.deepEqual(ours[0], {
      code: 2,
      details: 'v2ray.com/core/proxy/vmess/inbound: User c@test already exists.',
    })
  })
})
