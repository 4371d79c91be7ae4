/**
 * The store a role uses, from the config of docs/environment.md: FLEETGATE_DYNAMODB_ENDPOINT if set,
 * else AWS's DynamoDB when AWS_REGION is set, else the embedded dynalite with its data under
 * `<dataDir>/dynamodb`. Tables are created when missing (set `ensure: false` on AWS, where
 * Terraform creates them and the role's IAM policy need not allow CreateTable).
 */

import { existsSync } from 'node:fs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Config } from '../config/env.js';
import { createDynamoClient, type EnsureTablesResult, ensureTables } from './dynamo-client.js';
import {
  type EmbeddedDynamo,
  embeddedDynamoDir,
  probeEmbeddedDynamo,
  startEmbeddedDynamo,
} from './embedded.js';
import { embeddedSocketPath, preparePrivateSocket } from './private-socket.js';
import { TABLES, type TableDef } from './schema.js';

export interface OpenedStore {
  client: DynamoDBClient;
  /** Set when this process runs the embedded dynalite. */
  embedded: EmbeddedDynamo | undefined;
  /** `embedded`, `endpoint` or `aws`. */
  kind: 'embedded' | 'endpoint' | 'aws';
  tables: EnsureTablesResult | undefined;
  /** Destroys the client, then stops the embedded store. Close the roles that use it first. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Create missing tables (default true). */
  ensure?: boolean;
  tables?: readonly TableDef[];
  logger?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /**
   * Embedded config only: use the store of a `fleetgate all`/`discovery` already running on this
   * data dir (its private unix socket) when one answers, instead of opening LevelDB (which that
   * process holds). What `fleetgate users` does; only this account and root can connect.
   */
  joinRunning?: boolean;
}

export async function openStore(
  config: Pick<Config, 'dataDir' | 'dynamodbEndpoint' | 'awsRegion' | 'tablePrefix'>,
  opts: OpenStoreOptions = {},
): Promise<OpenedStore> {
  let embedded: EmbeddedDynamo | undefined;
  let kind: OpenedStore['kind'];
  let endpoint = config.dynamodbEndpoint;
  let socketPath: string | undefined;
  if (endpoint !== undefined) kind = 'endpoint';
  else if (config.awsRegion !== undefined) kind = 'aws';
  else {
    kind = 'embedded';
    socketPath = opts.joinRunning ? await runningSocket(config.dataDir) : undefined;
    if (socketPath === undefined) {
      embedded = await startEmbeddedDynamo({
        dir: embeddedDynamoDir(config.dataDir),
        socketPath: preparePrivateSocket(config.dataDir),
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
      socketPath = embedded.socketPath;
    }
    endpoint = 'http://localhost';
  }
  const client = createDynamoClient({ endpoint, region: config.awsRegion, socketPath });
  let tables: EnsureTablesResult | undefined;
  try {
    if (opts.ensure ?? true) {
      tables = await ensureTables(client, config.tablePrefix, opts.tables ?? Object.values(TABLES));
      if (tables.created.length > 0)
        opts.logger?.info({ created: tables.created }, 'DynamoDB tables created');
    }
  } catch (err) {
    client.destroy();
    await embedded?.close();
    throw err;
  }
  return {
    client,
    embedded,
    kind,
    tables,
    async close() {
      client.destroy();
      await embedded?.close();
    },
  };
}

/** The socket of a store running on this data dir, when one is there and answers. */
async function runningSocket(dataDir: string): Promise<string | undefined> {
  const socketPath = embeddedSocketPath(dataDir);
  if (!existsSync(socketPath)) return undefined;
  try {
    await probeEmbeddedDynamo({ socketPath }, 3000);
    return socketPath;
  } catch {
    return undefined;
  }
}
