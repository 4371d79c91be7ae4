/** What the running Node should support, worked out from the documentation of each package (not by loading it). */
import { glibcVersion } from '../../platform/http/http-engine.js';

/** Node ABIs each uWS package ships linux/darwin/win32 binaries for, and the glibc it needs on Linux. */
const UWS_BUILDS = [
  { abis: ['93', '108', '115'], minGlibc: undefined }, // @trufflesuite/uws-js-unofficial 20.30
  { abis: ['115', '127', '137', '141'], minGlibc: [2, 38] }, // @btc-vision/uwebsockets.js 20.57
] as const;

function atLeast(version: string | undefined, min: readonly [number, number]): boolean {
  if (version === undefined) return false;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

/** Whether some package should give this process a native uWS (x64/arm64 Linux with glibc, macOS, Windows). */
export function nativeUwsExpected(): boolean {
  const abi = process.versions.modules;
  const linux = process.platform === 'linux';
  return UWS_BUILDS.some(
    (b) =>
      (b.abis as readonly string[]).includes(abi) &&
      (!linux || b.minGlibc === undefined || atLeast(glibcVersion(), b.minGlibc)),
  );
}
