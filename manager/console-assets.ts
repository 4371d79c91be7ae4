/**
 * The operator console's static assets (built by `npm run build` from console/ into
 * dist/console), served by the manager on its own port so the console and the API share one
 * origin: no CORS, no third-party origin, the session token never crosses origins.
 *
 * Every file is read and gzip-compressed once at startup (the whole console is a few hundred KB)
 * and answered from memory. Hashed assets (`assets/*-<hash>.*`) are cached for a year; the page
 * itself is revalidated every time so a new build shows at the next load. Every response carries
 * a Content-Security-Policy without inline scripts or styles and without any other origin.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { HttpRequest, HttpResponse, Route } from '../platform/http/types.js';

/** `connect-src 'self'` also admits ws(s):// to this origin (CSP Level 3). */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer | undefined;
  etag: string;
  immutable: boolean;
}

/** Where `npm run build` puts the console, from this module in manager/ (tsx) or dist/manager/. */
export function defaultConsoleDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'dist', 'console');
    dir = path.dirname(dir);
  }
  return path.resolve('dist', 'console');
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listFiles(full, base));
    else out.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return out;
}

function loadAsset(file: string, rel: string): Asset {
  const raw = readFileSync(file);
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  const compressible = !type.startsWith('image/png');
  const gzip = compressible && raw.length > 512 ? gzipSync(raw, { level: 9 }) : undefined;
  return {
    type,
    raw,
    gzip,
    etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`,
    immutable: rel.startsWith('assets/'),
  };
}

function serve(asset: Asset, req: HttpRequest): HttpResponse {
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    'content-type': asset.type,
    etag: asset.etag,
    vary: 'accept-encoding',
    'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  };
  if (req.headers['if-none-match'] === asset.etag) return { status: 304, headers, body: '' };
  const gzipOk = asset.gzip && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  if (gzipOk) return { status: 200, headers: { ...headers, 'content-encoding': 'gzip' }, body: asset.gzip! };
  return { status: 200, headers, body: asset.raw };
}

const NOT_BUILT =
  '<!doctype html><meta charset="utf-8"><title>fleetgate</title><p>The operator console is not built: ' +
  'run <code>npm run build</code> (or <code>npm start</code>), then reload. The API answers under /api/.</p>';

export interface ConsoleAssets {
  routes: Route[];
  /** Files served, with their raw and gzip sizes (the budget test reads them). */
  files: Map<string, { bytes: number; gzipBytes: number }>;
  built: boolean;
}

/**
 * Routes for every file of `dir` (`index.html` also at `/`). A missing directory is not an
 * error: `/` then says how to build the console and the API works as before.
 */
export function consoleAssets(dir: string = defaultConsoleDir()): ConsoleAssets {
  const files = new Map<string, { bytes: number; gzipBytes: number }>();
  if (!existsSync(path.join(dir, 'index.html'))) {
    const handler = () => ({
      status: 404,
      headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' },
      body: NOT_BUILT,
    });
    return { routes: [{ method: 'GET', path: '/', handler }], files, built: false };
  }
  const routes: Route[] = [];
  for (const rel of listFiles(dir)) {
    const asset = loadAsset(path.join(dir, rel), rel);
    files.set(rel, { bytes: asset.raw.length, gzipBytes: (asset.gzip ?? asset.raw).length });
    const handler = (req: HttpRequest) => serve(asset, req);
    routes.push({ method: 'GET', path: `/${rel}`, handler });
    if (rel === 'index.html') routes.push({ method: 'GET', path: '/', handler });
  }
  return { routes, files, built: true };
}
