/** Types of scripts/gen-console-api.mjs for the test that checks the generated types are current. */
export const GENERATED: string;
export function generateConsoleApi(): Promise<string>;
