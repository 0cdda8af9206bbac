/*
 * tsray's native cipher path (see src/crypto/native.ts, which loads it, and README "Performance").
 *
 * 1. One OpenSSL EVP_CIPHER_CTX per body direction for aes-128-gcm and chacha20-poly1305: the key is
 *    set once, each chunk only sets its nonce, seals into the caller's wire buffer and opens in place.
 *    node:crypto would build a cipher object and a fresh output buffer per chunk.
 * 2. The server's AuthID scan (PROTOCOL §4.3): one AES-128 block decrypted under every user's key in
 *    one call with AES-NI, which takes constant time whatever the key and data (no lookup tables).
 *
 * The EVP_* symbols are resolved from the node binary at load time: the addon links no OpenSSL of its
 * own and is built against the OpenSSL headers that ship with Node's headers.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TSRAY_AESNI 1
#endif

#define TAG_LENGTH 16
#define NONCE_LENGTH 12
#define AUTH_BLOCK 16
#define AES_ROUND_KEYS 11

#define CHECK(env, call)                                  \
  do {                                                    \
    if ((call) != napi_ok) return throw_error(env, #call); \
  } while (0)

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, "TSRAY_NATIVE", message);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "TSRAY_NATIVE_RANGE", message);
  return NULL;
}

/* The bytes of a Buffer or any Uint8Array. */
static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *pointer = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t *)pointer;
  return 1;
}

static int get_u32(napi_env env, napi_value value, uint32_t *out) {
  return napi_get_value_uint32(env, value, out) == napi_ok;
}

/* ---------------------------------------------------------------------------------------------- */
/* AEAD contexts                                                                                  */

typedef struct {
  EVP_CIPHER_CTX *ctx;
  int encrypt;
} AeadState;

static void aead_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  AeadState *state = (AeadState *)data;
  if (state->ctx != NULL) EVP_CIPHER_CTX_free(state->ctx);
  free(state);
}

static AeadState *get_aead(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) return NULL;
  AeadState *state = (AeadState *)data;
  return state->ctx == NULL ? NULL : state;
}

/* aeadCreate(algorithm: 0 aes-128-gcm | 1 chacha20-poly1305, key, encrypt: boolean) → handle */
static napi_value aead_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t algorithm;
  uint8_t *key;
  size_t key_length;
  bool encrypt;
  if (argc < 3 || !get_u32(env, argv[0], &algorithm) || !get_bytes(env, argv[1], &key, &key_length) ||
      napi_get_value_bool(env, argv[2], &encrypt) != napi_ok) {
    return throw_error(env, "aeadCreate(algorithm, key, encrypt): bad arguments");
  }
  const EVP_CIPHER *cipher = algorithm == 0 ? EVP_aes_128_gcm() : EVP_chacha20_poly1305();
  if (algorithm > 1 || (int)key_length != EVP_CIPHER_key_length(cipher)) {
    return throw_range(env, "aeadCreate: unknown algorithm or wrong key length");
  }
  AeadState *state = (AeadState *)calloc(1, sizeof(AeadState));
  if (state == NULL) return throw_error(env, "aeadCreate: out of memory");
  state->encrypt = encrypt ? 1 : 0;
  state->ctx = EVP_CIPHER_CTX_new();
  if (state->ctx == NULL ||
      EVP_CipherInit_ex(state->ctx, cipher, NULL, NULL, NULL, state->encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(state->ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LENGTH, NULL) != 1 ||
      EVP_CipherInit_ex(state->ctx, NULL, NULL, key, NULL, state->encrypt) != 1) {
    aead_finalize(env, state, NULL);
    return throw_error(env, "aeadCreate: OpenSSL refused the cipher");
  }
  napi_value handle;
  if (napi_create_external(env, state, aead_finalize, NULL, &handle) != napi_ok) {
    aead_finalize(env, state, NULL);
    return throw_error(env, "aeadCreate: cannot wrap the context");
  }
  return handle;
}

/* aeadFree(handle): releases the context now; the handle is unusable afterwards. */
static napi_value aead_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (argc >= 1 && napi_get_value_external(env, argv[0], &data) == napi_ok && data != NULL) {
    AeadState *state = (AeadState *)data;
    if (state->ctx != NULL) EVP_CIPHER_CTX_free(state->ctx);
    state->ctx = NULL;
  }
  return NULL;
}

/* Optional additional authenticated data: argument `index` when it is a Uint8Array. */
static int add_aad(napi_env env, EVP_CIPHER_CTX *ctx, size_t argc, napi_value *argv, size_t index) {
  if (argc <= index) return 1;
  napi_valuetype type;
  if (napi_typeof(env, argv[index], &type) != napi_ok) return 0;
  if (type == napi_undefined) return 1;
  uint8_t *aad;
  size_t aad_length;
  int written = 0;
  if (!get_bytes(env, argv[index], &aad, &aad_length)) return 0;
  return EVP_CipherUpdate(ctx, NULL, &written, aad, (int)aad_length) == 1;
}

/*
 * aeadSeal(handle, nonce, source, start, end, out, at[, aad]): writes sealed(source[start, end)) ‖
 * tag into out at `at`. The caller sizes `out`; every range is checked here.
 */
static napi_value aead_seal(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  AeadState *state = argc >= 7 ? get_aead(env, argv[0]) : NULL;
  uint8_t *nonce, *source, *out;
  size_t nonce_length, source_length, out_length;
  uint32_t start, end, at;
  if (state == NULL || !state->encrypt || !get_bytes(env, argv[1], &nonce, &nonce_length) ||
      !get_bytes(env, argv[2], &source, &source_length) || !get_u32(env, argv[3], &start) ||
      !get_u32(env, argv[4], &end) || !get_bytes(env, argv[5], &out, &out_length) ||
      !get_u32(env, argv[6], &at)) {
    return throw_error(env, "aeadSeal: bad arguments or a freed context");
  }
  if (nonce_length != NONCE_LENGTH || start > end || end > source_length ||
      (size_t)at + (end - start) + TAG_LENGTH > out_length) {
    return throw_range(env, "aeadSeal: range outside the buffers");
  }
  int written = 0, final_written = 0;
  uint8_t *target = out + at;
  if (EVP_EncryptInit_ex(state->ctx, NULL, NULL, NULL, nonce) != 1 || !add_aad(env, state->ctx, argc, argv, 7) ||
      EVP_EncryptUpdate(state->ctx, target, &written, source + start, (int)(end - start)) != 1 ||
      EVP_EncryptFinal_ex(state->ctx, target + written, &final_written) != 1 ||
      EVP_CIPHER_CTX_ctrl(state->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LENGTH, target + (end - start)) != 1) {
    return throw_error(env, "aeadSeal: OpenSSL failed");
  }
  return NULL;
}

/*
 * aeadOpen(handle, nonce, sealed, start, end, tag, tagAt[, aad]) → boolean: decrypts sealed[start,
 * end) in place and checks the tag at tag[tagAt]; false when it does not match (the bytes are then
 * garbage).
 */
static napi_value aead_open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  AeadState *state = argc >= 7 ? get_aead(env, argv[0]) : NULL;
  uint8_t *nonce, *sealed, *tag;
  size_t nonce_length, sealed_length, tag_length;
  uint32_t start, end, tag_at;
  if (state == NULL || state->encrypt || !get_bytes(env, argv[1], &nonce, &nonce_length) ||
      !get_bytes(env, argv[2], &sealed, &sealed_length) || !get_u32(env, argv[3], &start) ||
      !get_u32(env, argv[4], &end) || !get_bytes(env, argv[5], &tag, &tag_length) ||
      !get_u32(env, argv[6], &tag_at)) {
    return throw_error(env, "aeadOpen: bad arguments or a freed context");
  }
  if (nonce_length != NONCE_LENGTH || start > end || end > sealed_length ||
      (size_t)tag_at + TAG_LENGTH > tag_length) {
    return throw_range(env, "aeadOpen: range outside the buffers");
  }
  /* OpenSSL may read the tag after writing plaintext: copy it first in case the ranges overlap. */
  uint8_t expected[TAG_LENGTH];
  memcpy(expected, tag + tag_at, TAG_LENGTH);
  int written = 0, final_written = 0;
  int ok = EVP_DecryptInit_ex(state->ctx, NULL, NULL, NULL, nonce) == 1 &&
           EVP_CIPHER_CTX_ctrl(state->ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LENGTH, expected) == 1 &&
           add_aad(env, state->ctx, argc, argv, 7) &&
           EVP_DecryptUpdate(state->ctx, sealed + start, &written, sealed + start, (int)(end - start)) == 1 &&
           EVP_DecryptFinal_ex(state->ctx, sealed + start + written, &final_written) == 1;
  napi_value result;
  CHECK(env, napi_get_boolean(env, ok, &result));
  return result;
}

/* ---------------------------------------------------------------------------------------------- */
/* AuthID scan                                                                                    */

typedef struct {
  size_t count;
  /* count × 11 decryption round keys, 16-byte aligned. */
  uint8_t *round_keys;
} AuthKeys;

static int has_aesni(void) {
#ifdef TSRAY_AESNI
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse2");
#else
  return 0;
#endif
}

#ifdef TSRAY_AESNI
#define AESNI __attribute__((target("aes,sse2")))

#define EXPAND_STEP(key, rcon)                                               \
  do {                                                                       \
    __m128i assist = _mm_aeskeygenassist_si128(key, rcon);                   \
    assist = _mm_shuffle_epi32(assist, 0xff);                                \
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));                        \
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));                        \
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));                        \
    key = _mm_xor_si128(key, assist);                                        \
  } while (0)

/* FIPS 197 key expansion, then the equivalent inverse cipher's keys (InvMixColumns on rounds 1-9). */
AESNI static void expand_decrypt_key(const uint8_t *key, __m128i *out) {
  __m128i enc[AES_ROUND_KEYS];
  __m128i k = _mm_loadu_si128((const __m128i *)key);
  enc[0] = k;
  EXPAND_STEP(k, 0x01); enc[1] = k;
  EXPAND_STEP(k, 0x02); enc[2] = k;
  EXPAND_STEP(k, 0x04); enc[3] = k;
  EXPAND_STEP(k, 0x08); enc[4] = k;
  EXPAND_STEP(k, 0x10); enc[5] = k;
  EXPAND_STEP(k, 0x20); enc[6] = k;
  EXPAND_STEP(k, 0x40); enc[7] = k;
  EXPAND_STEP(k, 0x80); enc[8] = k;
  EXPAND_STEP(k, 0x1b); enc[9] = k;
  EXPAND_STEP(k, 0x36); enc[10] = k;
  out[0] = enc[10];
  for (int i = 1; i < 10; i++) out[i] = _mm_aesimc_si128(enc[10 - i]);
  out[10] = enc[0];
}

AESNI static __m128i decrypt_block(const __m128i *rk, __m128i block) {
  __m128i x = _mm_xor_si128(block, rk[0]);
  for (int r = 1; r < 10; r++) x = _mm_aesdec_si128(x, rk[r]);
  return _mm_aesdeclast_si128(x, rk[10]);
}

/* First index in [from, to) whose decryption's first 32-bit word equals `word`, or -1; four keys per
 * pass so the AES units stay busy. */
AESNI static int64_t scan_keys(const AuthKeys *keys, const uint8_t *block, uint32_t word, size_t from, size_t to) {
  const __m128i *rk = (const __m128i *)keys->round_keys;
  __m128i input = _mm_loadu_si128((const __m128i *)block);
  size_t i = from;
  for (; i + 4 <= to; i += 4) {
    const __m128i *a = rk + i * AES_ROUND_KEYS, *b = a + AES_ROUND_KEYS, *c = b + AES_ROUND_KEYS,
                  *d = c + AES_ROUND_KEYS;
    __m128i xa = _mm_xor_si128(input, a[0]), xb = _mm_xor_si128(input, b[0]);
    __m128i xc = _mm_xor_si128(input, c[0]), xd = _mm_xor_si128(input, d[0]);
    for (int r = 1; r < 10; r++) {
      xa = _mm_aesdec_si128(xa, a[r]);
      xb = _mm_aesdec_si128(xb, b[r]);
      xc = _mm_aesdec_si128(xc, c[r]);
      xd = _mm_aesdec_si128(xd, d[r]);
    }
    uint32_t wa = (uint32_t)_mm_cvtsi128_si32(_mm_aesdeclast_si128(xa, a[10]));
    uint32_t wb = (uint32_t)_mm_cvtsi128_si32(_mm_aesdeclast_si128(xb, b[10]));
    uint32_t wc = (uint32_t)_mm_cvtsi128_si32(_mm_aesdeclast_si128(xc, c[10]));
    uint32_t wd = (uint32_t)_mm_cvtsi128_si32(_mm_aesdeclast_si128(xd, d[10]));
    if (wa == word) return (int64_t)i;
    if (wb == word) return (int64_t)i + 1;
    if (wc == word) return (int64_t)i + 2;
    if (wd == word) return (int64_t)i + 3;
  }
  for (; i < to; i++) {
    __m128i x = decrypt_block(rk + i * AES_ROUND_KEYS, input);
    if ((uint32_t)_mm_cvtsi128_si32(x) == word) return (int64_t)i;
  }
  return -1;
}

AESNI static void expand_all(AuthKeys *keys, const uint8_t *raw) {
  __m128i *rk = (__m128i *)keys->round_keys;
  for (size_t i = 0; i < keys->count; i++) expand_decrypt_key(raw + i * AUTH_BLOCK, rk + i * AES_ROUND_KEYS);
}

AESNI static void decrypt_one(const AuthKeys *keys, size_t index, const uint8_t *block, uint8_t *out) {
  const __m128i *rk = (const __m128i *)keys->round_keys + index * AES_ROUND_KEYS;
  _mm_storeu_si128((__m128i *)out, decrypt_block(rk, _mm_loadu_si128((const __m128i *)block)));
}
#endif

static void auth_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  AuthKeys *keys = (AuthKeys *)data;
  if (keys->round_keys != NULL) {
    memset(keys->round_keys, 0, keys->count * AES_ROUND_KEYS * 16);
    free(keys->round_keys);
  }
  free(keys);
}

/* authKeysCreate(keys: count × 16 bytes) → handle with every key's decryption schedule. */
static napi_value auth_keys_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *raw;
  size_t length;
  if (argc < 1 || !get_bytes(env, argv[0], &raw, &length) || length % AUTH_BLOCK != 0) {
    return throw_error(env, "authKeysCreate(keys): expected a multiple of 16 bytes");
  }
  if (!has_aesni()) return throw_error(env, "authKeysCreate: this CPU has no AES-NI");
  AuthKeys *keys = (AuthKeys *)calloc(1, sizeof(AuthKeys));
  if (keys == NULL) return throw_error(env, "authKeysCreate: out of memory");
  keys->count = length / AUTH_BLOCK;
  size_t bytes = keys->count * AES_ROUND_KEYS * 16;
  keys->round_keys = (uint8_t *)aligned_alloc(16, bytes == 0 ? 16 : bytes);
  if (keys->round_keys == NULL) {
    free(keys);
    return throw_error(env, "authKeysCreate: out of memory");
  }
#ifdef TSRAY_AESNI
  expand_all(keys, raw);
#endif
  napi_value handle;
  if (napi_create_external(env, keys, auth_finalize, NULL, &handle) != napi_ok) {
    auth_finalize(env, keys, NULL);
    return throw_error(env, "authKeysCreate: cannot wrap the keys");
  }
  return handle;
}

static AuthKeys *get_auth(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return (AuthKeys *)data;
}

/* authScan(handle, block, word, from, to) → first index whose decryption starts with BE32 `word`, or -1. */
static napi_value auth_scan(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  AuthKeys *keys = argc >= 5 ? get_auth(env, argv[0]) : NULL;
  uint8_t *block;
  size_t block_length;
  uint32_t word, from, to;
  if (keys == NULL || !get_bytes(env, argv[1], &block, &block_length) || !get_u32(env, argv[2], &word) ||
      !get_u32(env, argv[3], &from) || !get_u32(env, argv[4], &to)) {
    return throw_error(env, "authScan: bad arguments");
  }
  if (block_length < AUTH_BLOCK || from > to || to > keys->count) return throw_range(env, "authScan: range");
  int64_t found = -1;
#ifdef TSRAY_AESNI
  /* The block's bytes 0..3 read as a little-endian word: compare against the byte-swapped target. */
  uint32_t le_word = ((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >> 8) & 0xff00) | (word >> 24);
  found = scan_keys(keys, block, le_word, from, to);
#endif
  napi_value result;
  CHECK(env, napi_create_int64(env, found, &result));
  return result;
}

/* authDecrypt(handle, index, block, out): out[0, 16) = AES-128 decryption of block under key `index`. */
static napi_value auth_decrypt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  AuthKeys *keys = argc >= 4 ? get_auth(env, argv[0]) : NULL;
  uint32_t index;
  uint8_t *block, *out;
  size_t block_length, out_length;
  if (keys == NULL || !get_u32(env, argv[1], &index) || !get_bytes(env, argv[2], &block, &block_length) ||
      !get_bytes(env, argv[3], &out, &out_length)) {
    return throw_error(env, "authDecrypt: bad arguments");
  }
  if (index >= keys->count || block_length < AUTH_BLOCK || out_length < AUTH_BLOCK) {
    return throw_range(env, "authDecrypt: range");
  }
#ifdef TSRAY_AESNI
  decrypt_one(keys, index, block, out);
#endif
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"aeadCreate", NULL, aead_create, NULL, NULL, NULL, napi_default, NULL},
      {"aeadFree", NULL, aead_free, NULL, NULL, NULL, napi_default, NULL},
      {"aeadSeal", NULL, aead_seal, NULL, NULL, NULL, napi_default, NULL},
      {"aeadOpen", NULL, aead_open, NULL, NULL, NULL, napi_default, NULL},
      {"authKeysCreate", NULL, auth_keys_create, NULL, NULL, NULL, napi_default, NULL},
      {"authScan", NULL, auth_scan, NULL, NULL, NULL, napi_default, NULL},
      {"authDecrypt", NULL, auth_decrypt, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) != napi_ok) {
    return NULL;
  }
  napi_value aesni;
  if (napi_get_boolean(env, has_aesni(), &aesni) == napi_ok) napi_set_named_property(env, exports, "aesni", aesni);
  napi_value openssl;
  if (napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &openssl) == napi_ok) {
    napi_set_named_property(env, exports, "openssl", openssl);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
