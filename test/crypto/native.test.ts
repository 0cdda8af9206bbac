import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { aeadOpen, aeadSeal, createAeadCipher } from '../../src/crypto/aead.js'
import { createAeadContext } from '../../src/crypto/aead-context.js'
import { AesBlockDecryptors } from '../../src/crypto/aes-block.js'
import { cryptoBackend, nativeAddon } from '../../src/crypto/native.js'

// The native cipher path against node:crypto as the reference. `npm test` runs this file twice: with
// the addon, and with TSRAY_NATIVE=0, where every check below runs on the node:crypto fallback.
const disabled = process.env.TSRAY_NATIVE === '0'
const shipped = process.platform === 'linux' && process.arch === 'x64'
const ALGORITHMS = [
  { name: 'aes-128-gcm', keyLength: 16 },
  { name: 'chacha20-poly1305', keyLength: 32 },
] as const

test('the addon loads from the shipped prebuild unless TSRAY_NATIVE=0 turns it off', () => {
  const backend = cryptoBackend()
  if (disabled) {
    assert.equal(nativeAddon(), undefined)
    assert.deepEqual(backend, { native: false, detail: 'node:crypto (TSRAY_NATIVE=0)' })
  } else if (shipped) {
    assert.equal(backend.native, true, backend.detail)
    assert.match(backend.detail, /^native addon, OpenSSL 3\./)
  }
})

for (const { name, keyLength } of ALGORITHMS) {
  test(`${name}: a context seals as node:crypto does and opens what it sealed, at every size`, () => {
    const key = randomBytes(keyLength)
    const sealer = createAeadContext(name, key, 'seal')
    const opener = createAeadContext(name, key, 'open')
    for (const length of [0, 1, 15, 16, 17, 2_048, 16_384, 65_519]) {
      const nonce = randomBytes(12)
      const plain = randomBytes(length)
      const cipher = createAeadCipher(name, key, nonce)
      const expected = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
      // Into the middle of a larger buffer, from the middle of a larger source.
      const source = Buffer.concat([randomBytes(3), plain, randomBytes(5)])
      const out = Buffer.alloc(7 + length + 16 + 9, 0xee)
      sealer.seal(nonce, source, 3, 3 + length, out, 7)
      assert.deepEqual(out.subarray(7, 7 + length + 16), expected, `${name} seal of ${length} bytes`)
      assert.ok(
        out.subarray(0, 7).every((b) => b === 0xee) && out.subarray(7 + length + 16).every((b) => b === 0xee),
      )
      const wire = Buffer.from(expected)
      const opened = opener.open(nonce, wire, 0, length, wire, length)
      assert.deepEqual(opened, plain, `${name} open of ${length} bytes`)
    }
    sealer.free()
    opener.free()
  })

  test(`${name}: a flipped bit anywhere fails the open, and the context stays usable`, () => {
    const key = randomBytes(keyLength)
    const nonce = randomBytes(12)
    const plain = randomBytes(100)
    const cipher = createAeadCipher(name, key, nonce)
    const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    const opener = createAeadContext(name, key, 'open')
    for (const bit of [0, 7, 99 * 8, 100 * 8, 115 * 8 + 7]) {
      const wire = Buffer.from(sealed)
      wire[bit >> 3]! ^= 1 << (bit & 7)
      assert.equal(opener.open(nonce, wire, 0, 100, wire, 100), undefined, `bit ${bit}`)
    }
    const wire = Buffer.from(sealed)
    assert.deepEqual(opener.open(nonce, wire, 0, 100, wire, 100), plain)
    const wrongNonce = Buffer.from(nonce)
    wrongNonce[0]! ^= 1
    assert.equal(opener.open(wrongNonce, Buffer.from(sealed), 0, 100, sealed, 100), undefined)
    opener.free()
  })
}

test('a freed native context refuses work instead of touching freed memory', (t) => {
  const addon = nativeAddon()
  if (addon === undefined) {
    t.diagnostic(`no addon here: ${cryptoBackend().detail}`)
    assert.ok(disabled || !shipped, 'the addon must load on linux-x64')
    return
  }
  const context = createAeadContext('aes-128-gcm', randomBytes(16), 'seal')
  context.free()
  assert.throws(
    () => context.seal(randomBytes(12), Buffer.alloc(4), 0, 4, Buffer.alloc(20), 0),
    /freed context/,
  )
  const live = createAeadContext('aes-128-gcm', randomBytes(16), 'seal')
  // Ranges outside the buffers are refused by the addon itself.
  assert.throws(() => live.seal(randomBytes(12), Buffer.alloc(4), 0, 4, Buffer.alloc(19), 0), /range/)
  assert.throws(() => live.seal(randomBytes(12), Buffer.alloc(4), 0, 5, Buffer.alloc(64), 0), /range/)
  live.free()
})

test('the AuthID scan finds the key whose decryption opens with the word, as node:crypto decrypts', () => {
  const keys = Array.from({ length: 37 }, () => randomBytes(16))
  const scan = new AesBlockDecryptors(keys)
  for (const index of [0, 1, 3, 4, 5, 36]) {
    // A block whose plaintext under key `index` starts with four zero bytes (an AuthID's time high word).
    const plain = Buffer.concat([Buffer.alloc(4), randomBytes(12)])
    const block = createCipheriv('aes-128-ecb', keys[index]!, null).setAutoPadding(false).update(plain)
    assert.equal(scan.firstWordEquals(block, 0, 0, keys.length), index)
    assert.equal(scan.firstWordEquals(block, 0, index + 1, keys.length), -1)
    const word = plain.readUInt32BE(4)
    assert.equal(scan.firstWordEquals(block, 0, 0, index), -1)
    for (let other = 0; other < keys.length; other++) {
      const out = Buffer.alloc(16)
      scan.decrypt(other, block, out)
      const reference = createDecipheriv('aes-128-ecb', keys[other]!, null)
        .setAutoPadding(false)
        .update(block)
      assert.deepEqual(out, reference, `key ${other}`)
      if (other === index) assert.equal(out.readUInt32BE(4), word)
    }
  }
  assert.equal(new AesBlockDecryptors([]).firstWordEquals(randomBytes(16), 0, 0, 0), -1)
})

test('one-shot aeadSeal and aeadOpen with additional data match node:crypto and check the data', () => {
  const key = randomBytes(16)
  const nonce = randomBytes(12)
  const aad = randomBytes(16)
  for (const length of [0, 2, 60, 1_000]) {
    const plain = randomBytes(length)
    const cipher = createAeadCipher('aes-128-gcm', key, nonce)
    cipher.setAAD(aad, { plaintextLength: length })
    const expected = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    const sealed = aeadSeal('aes-128-gcm', key, nonce, plain, aad)
    assert.deepEqual(sealed, expected, `seal of ${length} bytes`)
    assert.deepEqual(aeadOpen('aes-128-gcm', key, nonce, sealed, aad), plain)
    // The sealed bytes are left as they were: the caller may keep them.
    assert.deepEqual(sealed, expected)
    assert.equal(aeadOpen('aes-128-gcm', key, nonce, sealed, randomBytes(16)), undefined)
    assert.equal(aeadOpen('aes-128-gcm', key, nonce, sealed), undefined)
  }
})
