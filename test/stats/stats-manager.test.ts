import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OnlineMap, StatsManager, statNames } from '../../src/stats/stats-manager.js'

test('StatsManager registers a counter on first use and a reset returns the old value', () => {
  const stats = new StatsManager()
  assert.equal(stats.findCounter(statNames.userUplink('a@x')), undefined)
  stats.counter(statNames.userUplink('a@x')).add(100)
  stats.counter(statNames.userUplink('a@x')).add(23)
  const counter = stats.findCounter('user>>>a@x>>>traffic>>>uplink')
  assert.equal(counter?.value, 123)
  assert.equal(counter.set(0), 123)
  assert.equal(counter.value, 0)
  assert.deepEqual(
    [...stats.counters()].map(([name]) => name),
    ['user>>>a@x>>>traffic>>>uplink'],
  )
})

test('OnlineMap counts an IP once per set of open connections and drops it when the last closes', () => {
  const map = new OnlineMap()
  const first = map.add('10.0.0.1', 100)
  const second = map.add('10.0.0.1', 105)
  map.add('10.0.0.2', 106)
  assert.equal(map.count, 2)
  assert.deepEqual(
    [...map.ips()],
    [
      ['10.0.0.1', 105],
      ['10.0.0.2', 106],
    ],
  )
  first()
  first()
  assert.equal(map.count, 2, 'a release counts once')
  second()
  assert.deepEqual([...map.ips().keys()], ['10.0.0.2'])
})

test('OnlineMap leaves the loopback addresses out, as Xray does', () => {
  const map = new OnlineMap()
  map.add('127.0.0.1', 1)
  map.add('::1', 1)
  assert.equal(map.count, 0)
})
