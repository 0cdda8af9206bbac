import { readdirSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { validateConfig } from '../src/config/load.js'
import { createLogs } from '../src/observe/log.js'
import { buildInstance } from '../src/runtime/build.js'

// One tsray instance of the soak run (server or client) in its own process: it starts from the
// config it is sent and answers stats requests (RSS, fds, CPU, event-loop delay) over IPC.

interface Request {
  readonly type: 'start' | 'stats' | 'stop'
  readonly config?: object
}

const loop = monitorEventLoopDelay({ resolution: 10 })
loop.enable()
let instance: ReturnType<typeof buildInstance> | undefined
let lastCpu = process.cpuUsage()
let lastAt = performance.now()

process.on('message', (message: Request) => {
  void (async () => {
    if (message.type === 'start') {
      instance = buildInstance(validateConfig(message.config).config, {
        logs: createLogs({ level: 'none', access: { to: 'none' }, error: { to: 'none' } }),
      })
      const bound = await instance.start()
      process.send?.({ type: 'started', ports: bound.map((b) => b.port) })
    } else if (message.type === 'stats') {
      const cpu = process.cpuUsage(lastCpu)
      const now = performance.now()
      const cpuPercent = ((cpu.user + cpu.system) / 1000 / (now - lastAt)) * 100
      lastCpu = process.cpuUsage()
      lastAt = now
      process.send?.({
        type: 'stats',
        rss: process.memoryUsage().rss,
        fds: readdirSync('/proc/self/fd').length,
        cpuPercent,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
      })
      loop.reset()
    } else {
      await instance?.stop(500)
      process.exit(0)
    }
  })()
})
