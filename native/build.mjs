// Builds the addon from native/tsray_native.c and stores it where node-gyp-build looks for it:
// prebuilds/<platform>-<arch>/tsray.napi.node. Offline: it compiles against the headers of the node
// that runs this script (<prefix>/include/node, OpenSSL's included), never downloads any.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '..')
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')
const nodedir = process.env.TSRAY_NODEDIR ?? resolve(process.execPath, '..', '..')
execFileSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--release'], {
  cwd: here,
  stdio: 'inherit',
})
const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`)
mkdirSync(target, { recursive: true })
copyFileSync(join(here, 'build', 'Release', 'tsray_native.node'), join(target, 'tsray.napi.node'))
execFileSync('strip', ['--strip-unneeded', join(target, 'tsray.napi.node')], { stdio: 'inherit' })
console.log(`build:native: ${join(target, 'tsray.napi.node')}`)
