/**
 * What a gateway with a store takes from the manager: the config pushed at an agent's first
 * heartbeat, a writer of agent status (and the gateway's aggregate, and the connection limit the
 * manager wants), and where task results go. The manager's wiring module provides them
 * (manager/process.ts): the manager of this process in `fleetgate all`, else built over the store
 * by the gateway process itself. Declared here, by the side that uses them, so the gateway
 * imports nothing of the manager.
 */

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Registry } from 'prom-client';
import type { ConfigSource } from '../agent/config-source.js';
import type { SessionRegistry } from '../agent/sessions.js';
import type { TaskResultSink } from '../agent/special-records.js';
import type { GatewayLoad } from './gateway-load.js';

/** The agent status writer as the gateway drives it (manager/agent-status-writer.ts). */
export interface AgentStatusWriter {
  start(): void;
  /** Comma-joined tags of a connected agent ('' when unknown): MQData.Tag of its records. */
  tagsOf(agentId: string): string;
  /** The connection limit the manager wants for this gateway; undefined when none. */
  desiredLimit(): number | undefined;
  /** Marks the agents still tracked as disconnected; after the gateway drained. */
  close(): Promise<void>;
}

export interface StatusWriterTarget {
  sessions: SessionRegistry;
  /** This gateway in the agents table and aggregates: `<advertise host>:<gRPC port>`. */
  gatewayId: string;
  /** `host:port` of this gateway's control API (what the manager calls). */
  controlAddr: string;
  registry: Registry;
  /** Tag changes reach the connected agents' records within this (FLEETGATE_TAG_REFRESH_MS). */
  tagsMs: number;
  /** Its aggregate is published and its desired limit re-read this often (FLEETGATE_AGGREGATE_MS). */
  aggregateMs: number;
  /** This gateway's ingest load, published with its aggregate (what the console shows per gateway). */
  load: () => Promise<GatewayLoad>;
}

export interface ManagerHooks {
  configSource: ConfigSource;
  taskResults: TaskResultSink;
  agentStatusWriter(gateway: StatusWriterTarget): AgentStatusWriter;
  /** Stops what was started for this gateway alone (its own task-result sink); after the drain. */
  close?(): Promise<void>;
}

/** Builds the hooks over an opened store client (only when the gateway has a store). */
export type ManagerHooksFactory = (client: DynamoDBClient) => ManagerHooks;
