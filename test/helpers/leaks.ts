import assert from 'node:assert/strict'
import { after } from 'node:test'

const NETWORK_HANDLES = new Set(['TCPSocketWrap', 'TCPServerWrap', 'UDPWrap', 'PipeWrap', 'ProcessWrap'])

function openNetworkHandles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((name) => NETWORK_HANDLES.has(name))
    .sort()
}

/**
 * Fails the file when a socket, server or child process it opened is still open after every other
 * `after` hook ran (with a short wait for closes in flight). Call it at the END of a test file, so
 * its hook runs last; handles open when it is called (the runner's pipes) are the baseline.
 */
export function failOnLeakedHandles(): void {
  const baseline = openNetworkHandles()
  const leaked = (): string[] => {
    const left = [...baseline]
    return openNetworkHandles().filter((name) => {
      const index = left.indexOf(name)
      if (index < 0) return true
      left.splice(index, 1)
      return false
    })
  }
  after(async () => {
    const deadline = Date.now() + 3_000
    while (leaked().length > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    assert.deepEqual(leaked(), [], 'sockets, servers or processes left open by this test file')
  })
}
