/** Types of scripts/build-console.mjs for the tests that build the console. */
export function buildConsole(out?: string): Promise<{ out: string; js: string; css: string }>;
