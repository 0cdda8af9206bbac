/**
 * Wraps an event handler of one tunnel so that a throw inside it fails that tunnel, not the process
 * (Node exits on a throw in an event handler): `onThrow` closes the tunnel, logs once and counts.
 */
export function contained<Args extends unknown[]>(
  handler: (...args: Args) => void,
  onThrow: (error: unknown) => void,
): (...args: Args) => void {
  return (...args) => {
    try {
      handler(...args)
    } catch (error) {
      onThrow(error)
    }
  }
}
