// The inputs and outputs tables of each module's README.md (infra/terraform/modules/*), generated
// from its variables.tf and outputs.tf between the markers <!-- tf:inputs --> … <!-- /tf:inputs -->
// and <!-- tf:outputs --> … <!-- /tf:outputs -->, so they cannot drift from the code: `node
// infra/tools.mjs docs` rewrites them, `npm run check:infra` fails when one is stale. The text
// around the markers (what the module is for, its choices) is written by hand.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json');

const cell = (v) => String(v).replace(/\|/g, '\\|').replace(/\n\s*/g, ' ');
/** An HCL expression as hcl2json renders it (`${expr}`), or a literal value, as README text. */
function hclText(v) {
  if (typeof v === 'string') {
    const m = /^\$\{([\s\S]*)\}$/.exec(v);
    return m ? m[1].replace(/\s+/g, ' ') : JSON.stringify(v);
  }
  return JSON.stringify(v);
}

export async function moduleTables(dir) {
  const read = async (file) => {
    try {
      return await parse(file, readFileSync(path.join(dir, file), 'utf8'));
    } catch (err) {
      if (err.code === 'ENOENT') return {};
      throw err;
    }
  };
  const vars = (await read('variables.tf')).variable ?? {};
  const outs = (await read('outputs.tf')).output ?? {};
  const inputs = [
    '| name | type | default | description |',
    '| --- | --- | --- | --- |',
    ...Object.entries(vars)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, [v]]) => {
        const def = 'default' in v ? `\`${cell(hclText(v.default))}\`` : 'required';
        return `| \`${name}\` | \`${cell(hclText(v.type ?? 'any'))}\` | ${def} | ${cell(v.description ?? '')} |`;
      }),
  ].join('\n');
  const outputs = [
    '| name | description |',
    '| --- | --- |',
    ...Object.entries(outs)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, [o]]) => `| \`${name}\` | ${cell(o.description ?? '')} |`),
  ].join('\n');
  return { inputs, outputs };
}

function applyMarkers(doc, tables, file) {
  let out = doc;
  for (const [name, body] of Object.entries(tables)) {
    const open = `<!-- tf:${name} -->`;
    const close = `<!-- /tf:${name} -->`;
    const i = out.indexOf(open);
    const j = out.indexOf(close);
    if (i < 0 || j < i) throw new Error(`${file}: markers ${open} … ${close} not found`);
    out = `${out.slice(0, i + open.length)}\n${body}\n${out.slice(j)}`;
  }
  return out;
}

/** Rewrites (write) or compares every module README; returns the stale ones' paths. */
export async function moduleDocs(terraformDir, { write = false } = {}) {
  const modules = path.join(terraformDir, 'modules');
  const stale = [];
  for (const name of readdirSync(modules).sort()) {
    const dir = path.join(modules, name);
    const file = path.join(dir, 'README.md');
    let doc;
    try {
      doc = readFileSync(file, 'utf8');
    } catch {
      stale.push(`${file} (missing)`);
      continue;
    }
    const next = applyMarkers(doc, await moduleTables(dir), file);
    if (next !== doc) {
      stale.push(file);
      if (write) writeFileSync(file, next);
    }
  }
  return stale;
}
