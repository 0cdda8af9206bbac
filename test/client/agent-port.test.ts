import assert from 'node:assert/strict'
import { Agent, type ClientRequestArgs, request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { test } from 'node:test'
import { requestPortOf } from '../../src/client/agent.js'

/** The options Node's http/https clients hand an agent's createConnection for `url`. */
function optionsFor(url: string): Promise<ClientRequestArgs> {
  return new Promise((resolve) => {
    class Probe extends Agent {
      constructor() {
        super()
        // As VmessAgent: no protocol of its own, so https requests accept it too.
        Object.defineProperty(this, 'protocol', { value: undefined, writable: true })
      }

      override createConnection(options: ClientRequestArgs): never {
        resolve(options)
        throw new Error('probe only')
      }
    }
    const send = url.startsWith('https:') ? httpsRequest : httpRequest
    const request = send(url, { agent: new Probe() })
    request.on('error', () => undefined)
    request.end()
  })
}

test('an https URL without a port goes to 443 through an http.Agent, whose defaultPort is 80', async () => {
  assert.equal(requestPortOf(await optionsFor('https://example.test/'), true), 443)
  assert.equal(requestPortOf(await optionsFor('https://example.test:8443/'), true), 8443)
  assert.equal(requestPortOf(await optionsFor('http://example.test/'), false), 80)
  assert.equal(requestPortOf(await optionsFor('http://example.test:8080/'), false), 8080)
})
