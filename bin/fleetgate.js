#!/usr/bin/env node
// Entry of the `fleetgate` command: checks the runtime, then runs the compiled CLI.
const [major, minor, patch] = process.versions.node.split('.').map(Number);
const atLeast = (a, b, c) => major > a || (major === a && (minor > b || (minor === b && patch >= c)));
if (!atLeast(20, 20, 2)) {
  console.error(
    `fleetgate needs Node.js >= 20.20.2 (HTTP/2 and TLS security fixes); this is ${process.versions.node}`,
  );
  process.exit(1);
}
// nghttp2 1.61 bounds CONTINUATION frames (CVE-2024-28182); Node 20.20.2 bundles it.
const [nh1, nh2] = (process.versions.nghttp2 ?? '0.0').split('.').map(Number);
if (nh1 < 1 || (nh1 === 1 && nh2 < 61)) {
  console.error(`fleetgate needs nghttp2 >= 1.61.0; this Node.js has ${process.versions.nghttp2}`);
  process.exit(1);
}
try {
  await import('../dist/cli/run.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/run.js')) {
    console.error('fleetgate is not built: run `npm run build` first (npm start does it for you)');
    process.exit(1);
  }
  throw err;
}
