/**
 * The manager's handle on DynamoDB: one document client and the table names of the schema module.
 * The repository functions beside this file take it and build every command the manager sends.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tableName } from '../../platform/store/schema.js';

export interface ManagerStore {
  doc: DynamoDBDocumentClient;
  prefix: string;
  t: {
    agents: string;
    tags: string;
    configs: string;
    users: string;
    apikeys: string;
    audit: string;
  };
}

export function createManagerStore(client: DynamoDBClient, prefix: string): ManagerStore {
  const doc = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return {
    doc,
    prefix,
    t: {
      agents: tableName(prefix, 'agents'),
      tags: tableName(prefix, 'tags'),
      configs: tableName(prefix, 'configs'),
      users: tableName(prefix, 'users'),
      apikeys: tableName(prefix, 'apikeys'),
      audit: tableName(prefix, 'audit'),
    },
  };
}
