#!/usr/bin/env node
// First: the heap settings must be in place before the rest of tsray is loaded.
import './heap-tuning.js'
import { randomUUID } from 'node:crypto'
import { constants } from 'node:os'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { checkConfigFiles } from '../config/files.js'
import { loadConfigFiles, validateConfig } from '../config/load.js'
import { cryptoBackend } from '../crypto/index.js'
import { privateTargetWarnings } from '../config/private-targets.js'
import { TsrayError } from '../errors.js'
import { buildInstance } from '../runtime/build.js'
import { normaliseCoreArgs, personaOf, startedLine, versionText } from './core-persona.js'
import type { BoundListener, Instance } from '../runtime/instance.js'
import {
  advertisedAddress,
  connectionInstructions,
  DEFAULT_SERVER_PORT,
  defaultServerConfig,
  defaultServerLink,
  defaultStatePath,
  loadOrCreateUser,
} from './default-server.js'
import { clientConfig, printConfigLinks, printLink } from './link-commands.js'
import { terminalQr } from './qr.js'
import { formatVmessLink } from '../config/share-link.js'

/** Tunnels get this long to finish after SIGINT/SIGTERM before they are closed. */
export const SHUTDOWN_GRACE_MS = 5_000

const HELP = `tsray: a VMess proxy (server and client), drop-in for V2Ray v4 JSON configs

Usage:
  tsray                          start a VMess server with a generated user (kept in a state file)
                                 and print the vmess:// link, its QR code and the client config
      --port N                   port of that server (default $PORT, else ${DEFAULT_SERVER_PORT})
      --listen ADDR              address to listen on (default 0.0.0.0)
      --address HOST             address to put in the link (default: this machine's IPv4)
      --ws PATH                  serve VMess over WebSocket on PATH (behind a TLS-terminating proxy)
      --id UUID                  the user id (default $TSRAY_ID, else the one in the state file)
      --state FILE               where the user is kept (default ${defaultStatePath()})
  tsray client LINK              run a local client for a vmess:// link: SOCKS5 (with UDP) on
                                 127.0.0.1:10808 and HTTP on 127.0.0.1:10809, as v2rayN
      --socks [ADDR:]PORT        where the SOCKS5 inbound listens
      --http [ADDR:]PORT         where the HTTP inbound listens
  tsray run -c FILE [-c FILE…]   run a V2Ray v4 JSON config in the foreground (-c - reads stdin;
                                 several files are merged in order, as V2Ray does)
      --pid-file FILE            write the process id there (for tsray reload)
  tsray reload PID | --pid-file FILE
                                 send SIGHUP: the running tsray re-reads its config files and applies
                                 VMess user and routing changes without dropping open tunnels; what
                                 needs a restart (listen addresses, transports, outbounds) is logged
  tsray test -c FILE [-c FILE…]  check a config: exit 0 when it is valid, 1 with the reason when not
  tsray link LINK                print the client outbound JSON for a vmess:// link (v2rayN base64
                                 JSON or the standard URI); exit 1 if tsray cannot run its transport
      --qr                       print the link's QR code in the terminal instead
      --png FILE                 write the QR code as a PNG image
  tsray link -c FILE             print the share links of a config's VMess inbound users and outbounds
      --address HOST             the address clients dial for the inbounds (default: listen address,
                                 else this machine's IPv4)
      --uri                      the standard URI form instead of v2rayN's base64 JSON
      --qr, --png FILE           with QR codes, as above
  tsray uuid                     print a new random UUID for a user id
  tsray version                  print the version and the cipher path (TSRAY_NATIVE=0: node:crypto)
  tsray -config FILE / -test     V2Ray's own spellings of run and test are accepted too
  tsray run -config stdin:       Xray's form, as panels start their core (-c=FILE, -config=FILE too)
      --skip-unsupported-inbounds
                                 skip inbounds of protocols tsray does not serve (VLESS, Trojan …)
                                 with a warning, instead of refusing the config
  Installed under the name "xray" (or "v2ray"), version and the started line take that core's form:
  see README "Operating".

VMess users and alterId:
  alterId 0 (the default) means the AEAD header (VMessAEAD), which every current core speaks.
  alterId > 0 selects the legacy MD5 header on a client, as V2Ray 4.34 does; servers accept both
  header kinds unless a VMess inbound sets "legacyHeader": "refuse" (or "warn").
  Securities: auto, aes-128-gcm, chacha20-poly1305, none, zero, aes-128-cfb.

Stops cleanly on SIGINT or SIGTERM; SIGHUP reloads (see tsray reload).`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

function fail(message: string): never {
  process.stderr.write(`tsray: ${message}\n`)
  process.exit(1)
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Runs until SIGINT/SIGTERM, then stops with a grace period; a second signal exits at once. */
async function runInForeground(
  instance: Instance,
  onStarted?: (bound: BoundListener[]) => void,
  reloadFrom?: { paths: string[]; skipUnsupportedInbounds: boolean },
): Promise<void> {
  // The handlers go in before anything is printed: a supervisor that signals as soon as it reads the
  // output must find them (a signal during start stops the instance once it is up).
  let signalled: (signal: NodeJS.Signals) => void = () => undefined
  const signal = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve))
  let stopping = false
  const onSignal = (received: NodeJS.Signals): void => {
    // A second signal exits at once, with the shell's code for death by that signal (128 + its number).
    if (stopping) process.exit(128 + (constants.signals[received] ?? 15))
    stopping = true
    signalled(received)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // SIGHUP would end the process by default: without config files there is nothing to re-read.
  process.on('SIGHUP', () => {
    if (reloadFrom !== undefined) void reloadConfig(instance, reloadFrom)
    else instance.logs.logger.warn({}, 'SIGHUP: nothing to reload (no config file)')
  })
  // Not `onStarted?.(await …)`: an optional call skips evaluating its arguments.
  const bound = await instance.start()
  // At warning, the default level, as V2Ray's own "V2Ray 4.34.0 started".
  const listeners = bound.map((listener) => `${listener.tag} (${listener.protocol}) on port ${listener.port}`)
  instance.logs.logger.warn({}, `tsray ${version()} started: ${listeners.join(', ')}`)
  onStarted?.(bound)
  instance.logs.logger.info({ signal: await signal }, 'stopping')
  await instance.stop(SHUTDOWN_GRACE_MS)
}

/** SIGHUP: re-reads the config files and applies what can change live; failures leave the instance as it was. */
async function reloadConfig(
  instance: Instance,
  from: { paths: string[]; skipUnsupportedInbounds: boolean },
): Promise<void> {
  const logger = instance.logs.logger
  if (from.paths.includes('-')) {
    logger.warn(
      { paths: from.paths },
      'cannot reload: the config came from standard input, which cannot be read again',
    )
    return
  }
  try {
    const next = await loadConfig(from.paths, { skipUnsupportedInbounds: from.skipUnsupportedInbounds })
    const report = instance.reload(next)
    logger.warn({ applied: report.applied }, 'config reloaded')
    if (report.needsRestart.length > 0)
      logger.warn(
        { needsRestart: report.needsRestart },
        'config changes that need a restart were not applied',
      )
  } catch (error) {
    logger.error(
      { err: error instanceof Error ? error.message : String(error) },
      'reload failed; the running config stays',
    )
  }
}

async function loadConfig(paths: string[], options: { skipUnsupportedInbounds?: boolean } = {}) {
  const loaded = await loadConfigFiles(paths, { readStdin, ...options })
  for (const warning of loaded.warnings) process.stderr.write(`tsray: warning: ${warning}\n`)
  return loaded.config
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c', multiple: true },
      port: { type: 'string' },
      listen: { type: 'string' },
      address: { type: 'string' },
      state: { type: 'string' },
      ws: { type: 'string' },
      id: { type: 'string' },
      socks: { type: 'string' },
      http: { type: 'string' },
      qr: { type: 'boolean' },
      png: { type: 'string' },
      uri: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      test: { type: 'boolean' },
      'skip-unsupported-inbounds': { type: 'boolean' },
      'pid-file': { type: 'string' },
    },
  })
  const command =
    positionals[0] ??
    (values.version === true
      ? 'version'
      : values.test === true
        ? 'test'
        : values.config !== undefined
          ? 'run'
          : 'serve')
  if (values.help === true || command === 'help') {
    process.stdout.write(`${HELP}\n`)
    return
  }
  switch (command) {
    case 'version':
      process.stdout.write(versionText(persona, version(), process.env, `ciphers: ${cryptoBackend().detail}`))
      return
    case 'uuid':
      process.stdout.write(`${randomUUID()}\n`)
      return
    case 'link': {
      const output = { qr: values.qr === true, png: values.png }
      const write = (text: string): void => void process.stdout.write(text)
      if (values.config !== undefined) {
        const config = await loadConfig(values.config)
        await printConfigLinks(
          config,
          { ...output, address: values.address, form: values.uri === true ? 'uri' : 'v2rayn' },
          write,
        )
        return
      }
      const text = positionals[1]
      if (text === undefined) fail('Cannot convert a link: give it as `tsray link vmess://…` (or -c FILE)')
      for (const warning of await printLink(text, output, write))
        process.stderr.write(`tsray: warning: ${warning}\n`)
      return
    }
    case 'client': {
      const text = positionals[1]
      if (text === undefined) fail('Cannot start a client: give the link as `tsray client vmess://…`')
      const { config, warnings } = clientConfig(text, { socks: values.socks, http: values.http })
      for (const warning of warnings) process.stderr.write(`tsray: warning: ${warning}\n`)
      await runInForeground(buildInstance(config))
      return
    }
    case 'test': {
      if (values.config === undefined) fail('Cannot test: give the config with -c FILE')
      const tested = await loadConfig(values.config, {
        skipUnsupportedInbounds:
          values['skip-unsupported-inbounds'] === true || process.env.TSRAY_SKIP_UNSUPPORTED_INBOUNDS === '1',
      })
      await checkConfigFiles(tested)
      for (const warning of privateTargetWarnings(tested))
        process.stderr.write(`tsray: warning: ${warning}\n`)
      process.stdout.write('Configuration OK.\n')
      return
    }
    case 'run': {
      if (values.config === undefined)
        fail('Cannot run: give the config with -c FILE (or run `tsray` alone for a default server)')
      const skipUnsupportedInbounds =
        values['skip-unsupported-inbounds'] === true || process.env.TSRAY_SKIP_UNSUPPORTED_INBOUNDS === '1'
      const paths = values.config
      await runInForeground(
        buildInstance(await loadConfig(paths, { skipUnsupportedInbounds })),
        () => {
          // Written once SIGHUP is handled: a reload sent as soon as the file appears must not kill us.
          const pidFile = values['pid-file']
          if (pidFile !== undefined) writeFileSync(pidFile, `${process.pid}\n`)
          const line = startedLine(persona, version(), process.env)
          if (line !== undefined) process.stdout.write(line)
        },
        { paths, skipUnsupportedInbounds },
      )
      return
    }
    case 'reload': {
      const source = values['pid-file'] ?? positionals[1]
      if (source === undefined) fail('Cannot reload: give the pid (`tsray reload PID`) or --pid-file FILE')
      const pid = Number(/^\d+$/.test(source) ? source : readFileSync(source, 'utf8').trim())
      if (!Number.isInteger(pid) || pid <= 0) fail(`Cannot reload: ${source} holds no process id`)
      process.kill(pid, 'SIGHUP')
      process.stdout.write(`sent SIGHUP to ${pid}\n`)
      return
    }
    case 'serve': {
      // A platform that runs Node apps (a PaaS, a panel) tells the app its port in $PORT.
      const portText = values.port ?? process.env.PORT
      const port = portText === undefined || portText === '' ? DEFAULT_SERVER_PORT : Number(portText)
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        fail(`Cannot serve: ${values.port === undefined ? '$PORT' : '--port'} ${portText} is not a port`)
      const listen = values.listen ?? '0.0.0.0'
      const wsPath = values.ws
      if (wsPath !== undefined && !wsPath.startsWith('/'))
        fail(`Cannot serve: --ws ${wsPath} is not a path starting with /`)
      const givenId = values.id ?? (process.env.TSRAY_ID === '' ? undefined : process.env.TSRAY_ID)
      const id = givenId ?? (await loadOrCreateUser(values.state ?? defaultStatePath())).id
      const config = validateConfig(defaultServerConfig({ id, listen, port, wsPath })).config
      const address = values.address ?? advertisedAddress(listen)
      // The id as the loader normalised it (a UUID in lowercase with dashes).
      const inbound = config.inbounds[0]
      const clientId = inbound?.protocol === 'vmess' ? (inbound.settings.clients[0]?.id ?? id) : id
      const link = defaultServerLink({ id: clientId, address, port, wsPath })
      const instructions = connectionInstructions(link, await terminalQr(formatVmessLink(link)))
      await runInForeground(buildInstance(config), () => process.stdout.write(instructions))
      return
    }
    default:
      fail(`Unknown command "${command}": see tsray --help`)
  }
}

const persona = personaOf(process.argv[1])

main(normaliseCoreArgs(process.argv.slice(2))).then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof TsrayError) fail(error.message)
    if (error instanceof Error && 'code' in error && typeof error.code === 'string') fail(error.message)
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error))
  },
)
