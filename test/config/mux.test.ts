import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateConfig } from '../../src/config/load.js'
import { ConfigError } from '../../src/errors.js'

const UUID = 'b831381d-6324-4d53-ad4f-8cda48b30811'

function withOutbound(outbound: Record<string, unknown>): Record<string, unknown> {
  return { inbounds: [{ port: 1080, listen: '127.0.0.1', protocol: 'socks' }], outbounds: [outbound] }
}

function vmessOutbound(mux: unknown): Record<string, unknown> {
  return withOutbound({
    protocol: 'vmess',
    settings: { vnext: [{ address: '127.0.0.1', port: 10086, users: [{ id: UUID }] }] },
    mux,
  })
}

function errorOf(config: unknown): string {
  try {
    validateConfig(config, { env: {} })
  } catch (error) {
    assert.ok(error instanceof ConfigError)
    return error.message
  }
  assert.fail('the config was accepted')
}

test('validateConfig reads outbounds[].mux as V2Ray does: concurrency 0 or absent means 8, negative turns mux off', () => {
  const cases: [unknown, unknown][] = [
    [
      { enabled: true, concurrency: 8 },
      { enabled: true, concurrency: 8 },
    ],
    [{ enabled: true }, { enabled: true, concurrency: 8 }],
    [
      { enabled: true, concurrency: 0 },
      { enabled: true, concurrency: 8 },
    ],
    [
      { enabled: true, concurrency: 1 },
      { enabled: true, concurrency: 1 },
    ],
    [
      { enabled: true, concurrency: 1024 },
      { enabled: true, concurrency: 1024 },
    ],
    [{ enabled: true, concurrency: -1 }, undefined],
    [{ enabled: false, concurrency: 8 }, undefined],
    [
      { Enabled: true, Concurrency: 16 },
      { enabled: true, concurrency: 16 },
    ],
    [{}, undefined],
  ]
  for (const [mux, expected] of cases) {
    const { config } = validateConfig(vmessOutbound(mux), { env: {} })
    assert.deepEqual(config.outbounds[0]?.mux, expected, JSON.stringify(mux))
  }
  const { config } = validateConfig(withOutbound({ protocol: 'freedom' }), { env: {} })
  assert.equal(config.outbounds[0]?.mux, undefined)
})

test('validateConfig refuses a mux concurrency V2Ray refuses, and mux on a freedom or blackhole outbound', () => {
  assert.equal(
    errorOf(vmessOutbound({ enabled: true, concurrency: 1025 })),
    'outbounds[0].mux.concurrency: 1025 is not a mux concurrency (1–1024; 0 means 8, a negative value turns mux off)',
  )
  assert.equal(
    errorOf(vmessOutbound({ enabled: true, concurrency: '8' })),
    'outbounds[0].mux.concurrency: "8" is not a mux concurrency (1–1024; 0 means 8, a negative value turns mux off)',
  )
  assert.equal(
    errorOf(vmessOutbound({ enabled: 'yes' })),
    'outbounds[0].mux.enabled: "yes" is not true or false',
  )
  for (const protocol of ['freedom', 'blackhole']) {
    assert.equal(
      errorOf(withOutbound({ protocol, mux: { enabled: true } })),
      'outbounds[0].mux.enabled: Mux.Cool (mux.enabled) is not supported yet',
    )
  }
})
