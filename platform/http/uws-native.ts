/**
 * Finds a native uWebSockets.js binary this process can load. Two packages ship binaries, each
 * for some Node ABIs (process.versions.modules) and with its own glibc floor:
 *
 *   uWebSockets.js (@trufflesuite/uws-js-unofficial 20.30)  ABI 93, 108, 115 (Node 16-20)
 *   @btc-vision/uwebsockets.js 20.57                         ABI 115, 127, 137, 141 (Node 20-25),
 *                                                            built against glibc 2.38 (Debian 13)
 *
 * The binary file is required directly: the packages' own entry points either fall back to a
 * slow pure-JS server (which crashes on the first request) or throw a message about Node versions
 * when the real cause is the system's glibc. Each refusal is kept so the caller can say why.
 */

import type * as UwsModule from 'uWebSockets.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type NativeUws = typeof UwsModule;

export interface UwsPackage {
  /** The dependency name in package.json. */
  name: string;
  /** Its binaries' directory, relative to the package root. */
  binaryDir: string;
}

/** In order of preference; the first that loads wins. */
export const UWS_PACKAGES: readonly UwsPackage[] = [
  { name: 'uWebSockets.js', binaryDir: 'binaries' },
  { name: '@btc-vision/uwebsockets.js', binaryDir: '.' },
];

export type NativeLoad =
  | { ok: true; uws: NativeUws; packageName: string; version: string; binary: string }
  | { ok: false; failures: string[] };

const require = createRequire(import.meta.url);

/** The directory holding the package's package.json (its `exports` may hide the file itself). */
function packageRoot(name: string): string | null {
  let main: string;
  try {
    main = require.resolve(name);
  } catch {
    return null;
  }
  for (let dir = path.dirname(main); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return null;
}

/** The binary name each package uses: uws_<platform>_<arch>_<ABI>.node. */
export function binaryName(): string {
  return `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
}

function isNative(mod: Record<string, unknown>): boolean {
  return typeof mod.App === 'function' && typeof mod.us_listen_socket_close === 'function';
}

function tryPackage(pkg: UwsPackage): NativeLoad {
  const root = packageRoot(pkg.name);
  if (!root) return { ok: false, failures: [`${pkg.name}: not installed`] };
  const binary = path.join(root, pkg.binaryDir, binaryName());
  if (!existsSync(binary)) {
    return { ok: false, failures: [`${pkg.name}: no ${binaryName()} (no build for this Node ABI/platform)`] };
  }
  let mod: Record<string, unknown>;
  try {
    mod = require(binary) as Record<string, unknown>;
  } catch (err) {
    // Typically "version `GLIBC_2.38' not found": the binary was built on a newer system.
    const first = String((err as Error).message).split('\n')[0];
    return { ok: false, failures: [`${pkg.name}: ${binaryName()} does not load: ${first}`] };
  }
  if (!isNative(mod)) return { ok: false, failures: [`${pkg.name}: ${binaryName()} is not uWS`] };
  const { version } = require(path.join(root, 'package.json')) as { version: string };
  return { ok: true, uws: mod as unknown as NativeUws, packageName: pkg.name, version, binary };
}

/** Tries each package in turn; the failures of all of them when none loads. */
export function loadNativeUws(packages: readonly UwsPackage[] = UWS_PACKAGES): NativeLoad {
  const failures: string[] = [];
  for (const pkg of packages) {
    const r = tryPackage(pkg);
    if (r.ok) return r;
    failures.push(...r.failures);
  }
  return { ok: false, failures };
}
