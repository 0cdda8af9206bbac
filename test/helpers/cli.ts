import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The built CLI entry point. */
export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

/** A `tsray` process with its output collected. */
export interface CliRun {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** The exit code, or the signal that ended the process. */
  readonly exited: Promise<number | NodeJS.Signals | null>
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<number | NodeJS.Signals | null>
}

/** Runs `tsray ARGS` with the environment given added to ours. */
export function runCli(args: readonly string[], options?: { env?: Record<string, string> }): CliRun {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...options?.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  )
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      const result = await exited
      clearTimeout(timer)
      return result
    },
  }
}

/** Polls `condition` every 25 ms; throws naming `what` (and the output given) after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  options: { timeoutMs?: number; output?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${options.output?.() ?? ''}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
