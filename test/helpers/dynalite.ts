/** A real dynalite (LevelDB on disk in a temporary directory) with the project's tables, per test file. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { type EmbeddedDynamo, startEmbeddedDynamo } from '../../platform/store/embedded.js';

export interface TestDynamo {
  dir: string;
  dynamo: EmbeddedDynamo;
  client: DynamoDBClient;
  prefix: string;
  /** Closes the client and dynalite and removes the directory. */
  close(): Promise<void>;
}

let counter = 0;

export async function startTestDynamo(opts: { prefix?: string; dir?: string } = {}): Promise<TestDynamo> {
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'fg-dynalite-'));
  const dynamo = await startEmbeddedDynamo({ dir });
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const prefix = opts.prefix ?? `t${process.pid}-${++counter}-`;
  await ensureTables(client, prefix);
  return {
    dir,
    dynamo,
    client,
    prefix,
    async close() {
      client.destroy();
      await dynamo.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment of a `fleetgate gateway` process with `db` as its store (agent status, configs,
 * load control), advertised on 127.0.0.1, records encoded in the main thread.
 */
export function storeGatewayEnv(db: TestDynamo): Record<string, string> {
  return {
    FLEETGATE_DYNAMODB_ENDPOINT: db.dynamo.endpoint,
    FLEETGATE_TABLE_PREFIX: db.prefix,
    FLEETGATE_ADVERTISE_HOST: '127.0.0.1',
    FLEETGATE_WORKERS: '0',
  };
}
