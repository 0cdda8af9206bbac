export {
  aeadOpen,
  aeadSeal,
  createAeadCipher,
  createAeadDecipher,
  expandChachaKey,
  AEAD_TAG_LENGTH,
  type AeadAlgorithm,
} from './aead.js'
export { createAeadContext, type AeadContext } from './aead-context.js'
export { cryptoBackend, NATIVE_SWITCH, type CryptoBackend } from './native.js'
export { crc32, fnv1a32, md5, sha256 } from './hash.js'
export { kdf, kdf12, kdf16 } from './kdf.js'
export { secureRandom, secureRandomInt, type RandomSource } from './random.js'
export { ShakeStream } from './shake-stream.js'
