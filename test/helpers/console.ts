/** What a command prints with console.error (the `fleetgate` CLI's refusals and progress), captured in a test. */

/** Runs `fn` with console.error collected into `lines` (one string per call), restoring it afterwards. */
export async function captureErrors<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { value: await fn(), lines };
  } finally {
    console.error = orig;
  }
}
