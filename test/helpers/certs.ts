import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** PEM files made for one test file: a CA and server certificates it signed. Private keys never leave the temp dir. */
export interface TestCertificates {
  readonly dir: string
  /** The CA certificate that signed every server certificate. */
  readonly caFile: string
  /** A server certificate for `localhost` and 127.0.0.1, and its key. */
  readonly certFile: string
  readonly keyFile: string
  /** A second server certificate, for `other.test` only. */
  readonly otherCertFile: string
  readonly otherKeyFile: string
  /** A self-signed certificate for `localhost` that no CA vouches for. */
  readonly selfSignedCertFile: string
  readonly selfSignedKeyFile: string
  readonly pem: (file: string) => string
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new Error(
        'The TLS tests make their certificates with openssl, which is not installed: run `apt-get install -y openssl`',
      )
    }
    throw new Error(
      `openssl ${args.join(' ')} failed: ${String((error as { stderr?: Buffer }).stderr ?? error)}`,
    )
  }
}

/** Generates a CA and server certificates with the OS's openssl (EC P-256, valid one day) in a fresh temp dir. */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'tsray-certs-'))
  const key = (name: string): void =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir)
  key('ca.key')
  openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-days', '1', '-subj', '/CN=tsray test CA', '-out', 'ca.pem'],
    dir,
  )
  const issue = (name: string, subject: string, altNames: string): void => {
    key(`${name}.key`)
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${subject}`, '-out', `${name}.csr`], dir)
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth\n`)
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    )
  }
  issue('server', 'localhost', 'DNS:localhost,IP:127.0.0.1')
  issue('other', 'other.test', 'DNS:other.test')
  key('self.key')
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'self.key',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-out',
      'self.pem',
    ],
    dir,
  )
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    otherCertFile: join(dir, 'other.pem'),
    otherKeyFile: join(dir, 'other.key'),
    selfSignedCertFile: join(dir, 'self.pem'),
    selfSignedKeyFile: join(dir, 'self.key'),
    pem: (file) => readFileSync(file, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
