/**
 * Metrics of the task engine, registered once per prom-client registry (two dispatchers or a
 * dispatcher and a result sink in one process share them).
 */
import { Counter, type Registry } from 'prom-client';

function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter<string> {
  return (
    (registry.getSingleMetric(name) as Counter<string> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  );
}

export function createTaskMetrics(registry: Registry) {
  return {
    batches: counter(
      registry,
      'fleetgate_dispatch_batches_total',
      'signed /command/batch calls to gateways by outcome (ok, error)',
      ['outcome'],
    ),
    deliveries: counter(
      registry,
      'fleetgate_dispatch_results_total',
      'per-agent delivery results reported by gateways (sent, not_connected, fenced, duplicate, ...)',
      ['result'],
    ),
    leases: counter(
      registry,
      'fleetgate_dispatch_leases_total',
      'chunk lease claims by outcome (claimed, conflict, lost)',
      ['outcome'],
    ),
    retries: counter(
      registry,
      'fleetgate_dispatch_retries_total',
      'subtask deliveries scheduled for a retry',
    ),
    configWrites: counter(
      registry,
      'fleetgate_dispatch_config_writes_total',
      "config items a config task wrote into its agents' agent#<id> scopes (unchanged items are not written)",
    ),
    exhausted: counter(
      registry,
      'fleetgate_dispatch_exhausted_total',
      'subtasks that ended result_failed after max_attempts or their result timeout',
      ['reason'],
    ),
    results: counter(
      registry,
      'fleetgate_task_results_applied_total',
      'task results posted by gateways, by outcome (applied, unknown, ignored)',
      ['outcome'],
    ),
    sinkDrops: counter(
      registry,
      'fleetgate_task_result_sink_dropped_total',
      'task results a gateway dropped because its bounded buffer was full',
    ),
    sinkPosts: counter(
      registry,
      'fleetgate_task_result_sink_posts_total',
      'updateSubTask posts from a gateway by outcome (ok, error)',
      ['outcome'],
    ),
  };
}

export type TaskMetrics = ReturnType<typeof createTaskMetrics>;
