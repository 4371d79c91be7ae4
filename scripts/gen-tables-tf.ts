/**
 * Writes infra/terraform/modules/tables/schema.tf.json from platform/store/schema.ts, so the
 * Terraform tables are the schema module's tables: names, keys, attribute types, indexes and
 * their projections, TTL attribute. `npm run gen:tables`; test/integration/infra-terraform.test.ts
 * fails when the file is not what this script would write.
 *
 * Usage: node --import tsx scripts/gen-tables-tf.ts [--check]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TABLES, type TableDef, toCreateTableInput } from '../platform/store/schema.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TABLES_TF_JSON = path.join(root, 'infra', 'terraform', 'modules', 'tables', 'schema.tf.json');

export interface TerraformTable {
  suffix: string;
  hash_key: string;
  range_key: string | null;
  attributes: Array<{ name: string; type: string }>;
  global_secondary_indexes: Array<{
    name: string;
    hash_key: string;
    range_key: string | null;
    projection_type: string;
    non_key_attributes: string[];
  }>;
  ttl_attribute: string | null;
  billing_mode: string;
  access: string;
}

/** The Terraform view of one table, built from the same CreateTable request `ensureTables` sends. */
export function toTerraformTable(def: TableDef): TerraformTable {
  const input = toCreateTableInput(def, '');
  const key = (schema: typeof input.KeySchema, type: 'HASH' | 'RANGE') =>
    schema?.find((k) => k.KeyType === type)?.AttributeName ?? null;
  return {
    suffix: def.suffix,
    hash_key: key(input.KeySchema, 'HASH')!,
    range_key: key(input.KeySchema, 'RANGE'),
    attributes: (input.AttributeDefinitions ?? []).map((a) => ({
      name: a.AttributeName!,
      type: a.AttributeType!,
    })),
    global_secondary_indexes: (input.GlobalSecondaryIndexes ?? []).map((ix) => ({
      name: ix.IndexName!,
      hash_key: key(ix.KeySchema, 'HASH')!,
      range_key: key(ix.KeySchema, 'RANGE'),
      projection_type: ix.Projection!.ProjectionType!,
      non_key_attributes: [...(ix.Projection!.NonKeyAttributes ?? [])],
    })),
    ttl_attribute: def.ttl ?? null,
    billing_mode: def.billing,
    access: def.access,
  };
}

/** The whole file as an object (Terraform JSON syntax: a `locals` block and a `//` comment). */
export function tablesTfJson(): object {
  return {
    '//': 'Generated from platform/store/schema.ts by scripts/gen-tables-tf.ts (npm run gen:tables). Do not edit.',
    locals: {
      schema_tables: Object.fromEntries(
        Object.entries(TABLES).map(([k, def]) => [k, toTerraformTable(def as TableDef)]),
      ),
    },
  };
}

function main(): number {
  const want = tablesTfJson();
  if (process.argv.includes('--check')) {
    const have = JSON.parse(readFileSync(TABLES_TF_JSON, 'utf8')) as unknown;
    if (JSON.stringify(have) !== JSON.stringify(want)) {
      console.error(`${path.relative(root, TABLES_TF_JSON)} is out of date: run npm run gen:tables`);
      return 1;
    }
    return 0;
  }
  writeFileSync(TABLES_TF_JSON, `${JSON.stringify(want, null, 2)}\n`);
  // Keep the file in the repository's JSON style, so `npm run lint` stays quiet about it.
  const biome = path.join(root, 'node_modules', '.bin', 'biome');
  const r = spawnSync(biome, ['format', '--write', TABLES_TF_JSON], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) return r.status ?? 1;
  console.log(`wrote ${path.relative(root, TABLES_TF_JSON)} (${Object.keys(TABLES).length} tables)`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main();
}
