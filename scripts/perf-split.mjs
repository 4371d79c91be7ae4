#!/usr/bin/env node
/**
 * Where a Node server's CPU goes, from a `perf record -g` of it: each sample is counted once, by
 * the layer of its innermost frame (OpenSSL crypto, the rest of OpenSSL, kernel, libc, V8, Node's
 * C++, …), JavaScript samples by whose function is innermost (Node's own, ours, dependencies),
 * and OpenSSL's crypto by primitive. Node links OpenSSL statically, so OpenSSL's functions are
 * told apart by their place in the binary (the symbols between the first `dtls1_*`/`ssl_*` one
 * after V8's builtins and `padlock_ctr32_encrypt`, as `nm -n` lists them).
 *
 *   node scripts/perf-split.mjs --data perf.data --node PATH/TO/node [--per-cpu-s N]
 *
 * With --per-cpu-s (the run's sessions per server CPU-second) each share is also printed as µs
 * per session. Record with `perf record -F 1999 -g -p PID` and run the server with
 * `--perf-basic-prof --interpreted-frames-native-stack` so JIT frames have names
 * (docs/capacity.md, "Handshake cost").
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    node: { type: 'string' },
    'per-cpu-s': { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help || !values.data || !values.node) {
  console.log('usage: node scripts/perf-split.mjs --data perf.data --node PATH/TO/node [--per-cpu-s N]');
  process.exit(values.help ? 0 : 2);
}

/** OpenSSL's function names: the contiguous range of the statically linked library in `node`. */
function opensslSymbols(nodeBinary) {
  const names = execFileSync('nm', ['-n', '--defined-only', nodeBinary], {
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  })
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length === 3 && /^[tT]$/.test(f[1]))
    .map((f) => f[2]);
  const end = names.indexOf('padlock_ctr32_encrypt');
  let start = names.indexOf('dtls1_stop_timer');
  if (end < 0 || start < 0) throw new Error('OpenSSL symbols not found in the node binary (stripped?)');
  while (!names[start - 1].startsWith('Builtins_')) start--;
  return new Set(names.slice(start, end + 1));
}

const CRYPTO_PRIMITIVES = [
  ['P-256 (ECDSA sign and verify)', /nistz256|ecdsa|ECDSA|ec_GFp|^ossl_ec_|^EC_|wNAF|ec_scalar|ec_point/],
  ['X25519', /x25519|X25519|^fe_|^ge_|fe64|fe51|curve25519/],
  ['ML-KEM (and its SHA-3)', /ml_kem|mlkem|KeccakF|keccak|Keccak|ntt|^matrix|^scalar|^poly|^cbd|sha3|SHA3/],
  ['SHA-2 (transcript, HKDF, certificate and CRL hashing)', /sha256|sha512|SHA256|SHA512/],
  ['AES-GCM (records)', /aes|AES|gcm|GCM|ghash/],
  ['bignum', /^bn_|^BN_|mont/],
];
const GC = /Heap::|Scaveng|MarkCompact|Sweeper|GCTracer|MinorMark|ConcurrentMark|Evacuat|IncrementalMarking/;
const COMPILE = /compiler::|Compiler::|maglev|Maglev|Turbofan|Compile/;

/** The layer of a sample: its innermost frame's, GC and JIT compilation by the frames above it too. */
function layerOf(frames, ossl) {
  const [sym, dso] = frames[0];
  const top = frames
    .slice(0, 12)
    .map((f) => f[0])
    .join(' ');
  if (dso.includes('kernel')) return 'kernel';
  if (ossl.has(sym))
    return CRYPTO_PRIMITIVES.some(([, re]) => re.test(sym)) ? 'OpenSSL crypto' : 'OpenSSL, not crypto';
  if (GC.test(top)) return 'GC';
  if (COMPILE.test(top)) return 'V8 JIT compilation';
  if (sym.startsWith('nghttp2_')) return 'nghttp2';
  if (dso.includes('libc')) return 'libc (malloc, free, memcpy)';
  if (sym.startsWith('JS:') || sym.startsWith('Builtins_') || sym.startsWith('v8::') || dso.includes('perf-'))
    return 'V8 (JavaScript, builtins, runtime)';
  if (sym.startsWith('node::') || sym.startsWith('std::')) return "Node's C++";
  if (sym.startsWith('uv_') || sym.startsWith('uv__')) return 'libuv';
  return 'other native';
}

/** Whose JavaScript is innermost on the stack: Node's own, the project's, or a dependency's. */
function jsOwner(frames) {
  const js = frames.find((f) => f[0].startsWith('JS:'));
  if (!js) return 'no JavaScript frame';
  if (js[0].includes('node_modules')) return 'dependencies';
  return js[0].includes('file://') ? 'ours' : "Node's own";
}

const ossl = opensslSymbols(values.node);
const out = execFileSync('perf', ['script', '-i', values.data], { maxBuffer: 1 << 30, encoding: 'utf8' });
const counts = { layer: new Map(), js: new Map(), crypto: new Map() };
const bump = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);
let total = 0;
for (const block of out.split('\n\n')) {
  const lines = block.split('\n').filter((l) => l.trim());
  if (lines.length < 2) continue;
  const frames = lines.slice(1).flatMap((l) => {
    const m = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$/.exec(l);
    return m ? [[m[1].replace(/\+0x[0-9a-f]+$/, ''), m[2]]] : [];
  });
  if (frames.length === 0) continue;
  total++;
  const layer = layerOf(frames, ossl);
  bump(counts.layer, layer);
  if (layer.startsWith('V8 (')) bump(counts.js, jsOwner(frames));
  if (layer === 'OpenSSL crypto') {
    bump(counts.crypto, CRYPTO_PRIMITIVES.find(([, re]) => re.test(frames[0][0]))?.[0] ?? 'other');
  }
}

const perSession = values['per-cpu-s'] ? 1e6 / Number(values['per-cpu-s']) : undefined;
console.log(`${total} samples${perSession ? `; ${perSession.toFixed(0)} µs of CPU per session` : ''}\n`);
for (const [title, m] of [
  ['layer of the innermost frame', counts.layer],
  ['V8 samples by whose JavaScript is innermost', counts.js],
  ['OpenSSL crypto by primitive', counts.crypto],
]) {
  console.log(`| ${title} | share | ${perSession ? 'µs per session |' : ''}`);
  console.log(`|---|---|${perSession ? '---|' : ''}`);
  for (const [k, n] of [...m].sort((a, b) => b[1] - a[1])) {
    const us = perSession ? ` ${((n / total) * perSession).toFixed(0)} |` : '';
    console.log(`| ${k} | ${((100 * n) / total).toFixed(1)} % |${us}`);
  }
  console.log('');
}
