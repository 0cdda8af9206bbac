import { createSocket } from 'node:dgram'
import { isIP } from 'node:net'

/** A plain-DNS server for tests: answers A and AAAA questions from `records`, NXDOMAIN for the rest. */
export interface TestDnsServer {
  readonly port: number
  /** "name TYPE" of every question asked, in order. */
  readonly questions: string[]
  close(): Promise<void>
}

function readName(message: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = []
  let at = offset
  while (at < message.length) {
    const length = message.readUInt8(at)
    if (length === 0) return { name: labels.join('.'), end: at + 1 }
    labels.push(message.subarray(at + 1, at + 1 + length).toString('latin1'))
    at += 1 + length
  }
  throw new Error('DNS question runs past the message')
}

function addressBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number))
  const [head = '', tail = ''] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left
  const bytes = Buffer.alloc(16)
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2))
  return bytes
}

/** Starts the server on 127.0.0.1, port 0. `records`: lower-case name → its addresses. */
export async function startDnsServer(
  records: Readonly<Record<string, readonly string[]>>,
): Promise<TestDnsServer> {
  const socket = createSocket('udp4')
  const questions: string[] = []
  socket.on('error', () => undefined)
  socket.on('message', (query, remote) => {
    if (query.length < 12) return
    const { name, end } = readName(query, 12)
    const type = query.readUInt16BE(end)
    const question = query.subarray(12, end + 4)
    questions.push(`${name} ${type === 1 ? 'A' : type === 28 ? 'AAAA' : type}`)
    const known = records[name.toLowerCase()]
    const wanted = (known ?? []).filter((address) => isIP(address) === (type === 28 ? 6 : 4))
    const answers = wanted.map((address) => {
      const data = addressBytes(address)
      const fixed = Buffer.alloc(12)
      fixed.writeUInt16BE(0xc00c, 0) // the name: a pointer to the question's
      fixed.writeUInt16BE(type, 2)
      fixed.writeUInt16BE(1, 4) // class IN
      fixed.writeUInt32BE(60, 6)
      fixed.writeUInt16BE(data.length, 10)
      return Buffer.concat([fixed, data])
    })
    const header = Buffer.alloc(12)
    header.writeUInt16BE(query.readUInt16BE(0), 0)
    header.writeUInt16BE(known === undefined ? 0x8183 : 0x8180, 2) // response, RD, RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    socket.send(Buffer.concat([header, question, ...answers]), remote.port, remote.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {
    port: socket.address().port,
    questions,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  }
}
