################################################################################
# Sizing: agents expected -> each gateway's connection limit, the planned load per gateway (the
# autoscaling target), the gateway count, brokers, DynamoDB warm throughput
#
# One source of truth: docs/capacity.md's model (scripts/capacity.ts). `npm run capacity --
# --write` writes its per-agent coefficients, taken from the end-to-end runs in loadtest/results
# (bench:fleet: gateway CPU per agent at two event rates, RSS per streaming agent, re-admissions
# in a settled storm; bench:ingest for the Kafka path), to capacity.tf.json beside this file;
# the arithmetic below is the model's deploySizing(), and each example's `terraform test`
# asserts that what it derives equals what the model computes (tests/capacity.expected.json).
#
# A gateway is one Node event loop: the transport (TLS, HTTP/2, gRPC) runs on its main thread,
# so agents per gateway are sized for one core whatever the task size (larger tasks only add
# ingest workers and memory).
################################################################################

locals {
  model = local.capacity_model
  rate  = var.records_per_agent_per_second

  az_count = length(var.azs)

  # Gateway CPU per agent-second (µs): a fixed part, one small message per non-empty 100 ms tick
  # (Poisson events) plus the heartbeat, records beyond one per message, and the Kafka path.
  messages_per_agent_s = local.model.send_ticks_per_s * (1 - pow(2.718281828459045, -local.rate / local.model.send_ticks_per_s)) + 1 / local.model.heartbeat_s
  records_per_agent_s  = local.rate + 1 / local.model.heartbeat_s
  cpu_us_per_agent_s = (local.model.fixed_us_per_agent_s
    + local.messages_per_agent_s * local.model.us_per_message
    + max(0, local.records_per_agent_s - local.messages_per_agent_s) * local.model.us_per_batched_record
  + local.records_per_agent_s * local.model.us_per_kafka_record)

  gateway_vcpus   = var.gateway_cpu / 1024
  event_loop_cpus = min(1, local.gateway_vcpus)
  # One vCPU: the pipeline runs inline (FLEETGATE_WORKERS=0), as the model measured it. With
  # gateway_processes N, each process gets its share of the vCPUs: its main thread and the rest
  # as workers.
  gateway_workers = max(0, floor(local.gateway_vcpus / var.gateway_processes) - 1)

  # 1. The connection limit (FLEETGATE_MAX_CONNECTIONS): the least of CPU at the model's target,
  #    memory at its share, and what one core re-admits in a reconnect storm within the goal.
  agents_by_cpu           = floor(local.event_loop_cpus * local.model.cpu_target * 1000000 / local.cpu_us_per_agent_s)
  agents_by_memory        = floor(var.gateway_memory * 1048576 * local.model.memory_target / local.model.rss_per_agent_bytes)
  agents_by_storm         = floor((local.model.storm_goal_s - 2 * local.model.reconnect_delay_s) * local.model.readmit_per_cpu_s * local.event_loop_cpus)
  derived_max_conns       = min(local.agents_by_cpu, local.agents_by_memory, local.agents_by_storm)
  gateway_max_connections = coalesce(var.gateway_max_connections, local.derived_max_conns)

  # 2. The planned load (the autoscaling target): with one zone lost, its agents move to the
  #    other zones' gateways, which then sit at their limit; and never more than a gateway held
  #    end to end at this rate or above.
  planned_by_zone_loss = floor(local.gateway_max_connections * (local.az_count - 1) / local.az_count)
  held_end_to_end      = [for r in local.model.end_to_end_held : r.agents if r.rate >= local.rate]
  planned_agents_per_gateway = (length(local.held_end_to_end) > 0
    ? min(local.planned_by_zone_loss, max(local.held_end_to_end...))
  : local.planned_by_zone_loss)

  # 3. Gateways: enough for expected_agents at the planned load, a multiple of the zones; the
  #    autoscaling ceiling a multiple of that.
  derived_gateway_count = max(local.az_count, ceil(var.expected_agents / local.planned_agents_per_gateway / local.az_count) * local.az_count)
  gateway_count         = coalesce(var.gateway_count, local.derived_gateway_count)
  gateway_max_count     = local.gateway_count * local.model.max_scale_factor

  # 4. What that means per gateway (the sizing output).
  agents_per_gateway_expected = ceil(var.expected_agents / local.gateway_count)
  steady_cpu_share            = local.agents_per_gateway_expected * local.cpu_us_per_agent_s / 1000000
  zone_loss_cpu_share         = ceil(local.agents_per_gateway_expected * local.az_count / (local.az_count - 1)) * local.cpu_us_per_agent_s / 1000000
  saturation_agents           = floor(1000000 / local.cpu_us_per_agent_s)
  memory_for_agents_mib       = ceil(local.agents_per_gateway_expected * local.model.rss_per_agent_bytes / 1048576)
  # Re-admission: after a zone loss, that zone's agents handshake with the survivors; after a
  # full restart (all gateways at once, which a rolling deployment avoids), every agent does.
  zone_loss_readmit_seconds    = ceil((var.expected_agents / local.az_count) / (local.gateway_count * (local.az_count - 1) / local.az_count * local.model.readmit_per_cpu_s))
  full_restart_readmit_seconds = ceil(var.expected_agents / (local.gateway_count * local.model.readmit_per_cpu_s))

  # 5. DynamoDB: the agents table warmed for twice its steady writes, or a full reconnect
  #    storm's status writes within the model's spread, whichever is more; never below what a
  #    new on-demand table starts with.
  agents_table_warm_write_units = max(local.model.dynamo_warm_floor_write, ceil(var.expected_agents * max(2 * local.model.agent_write_units_per_agent_s_steady, local.model.agent_write_units_per_agent_s_storm) / 1000) * 1000)
  agents_table_warm_read_units  = local.model.dynamo_warm_floor_read

  # 6. Kafka. Records leave the gateways lz4-compressed; agent records (protobuf maps with
  #    repeated field names) compress about 3:1. Each byte is written on 3 brokers (RF 3).
  assumed_compression_ratio = 3
  ingress_raw_mib_s         = var.expected_agents * var.records_per_agent_per_second * var.average_record_bytes / 1048576
  ingress_compressed_mib_s  = local.ingress_raw_mib_s / local.assumed_compression_ratio
  broker_disk_write_mib_s   = local.ingress_compressed_mib_s * 3
  # Baseline EBS bandwidth (Mbit/s) of the instance behind each MSK broker size (EC2 m7g
  # documentation); brokers are planned at half of it, leaving the rest for consumers' reads
  # that miss the page cache and for catching up after an outage.
  broker_ebs_baseline_mbit = {
    "kafka.m7g.large"    = 630
    "kafka.m7g.xlarge"   = 1250
    "kafka.m7g.2xlarge"  = 2500
    "kafka.m7g.4xlarge"  = 5000
    "kafka.m7g.8xlarge"  = 10000
    "kafka.m7g.12xlarge" = 15000
    "kafka.m7g.16xlarge" = 20000
  }
  broker_write_budget_mib_s = lookup(local.broker_ebs_baseline_mbit, var.kafka_broker_instance_type, 630) * 1000000 / 8 / 1048576 * 0.5
  derived_broker_count      = max(3, ceil(local.broker_disk_write_mib_s / local.broker_write_budget_mib_s / local.az_count) * local.az_count)
  kafka_broker_count        = coalesce(var.kafka_broker_count, local.derived_broker_count)
  # The model's partitions (10 MB/s each, at least 12) unless given.
  derived_partitions = max(local.model.kafka_min_partitions, ceil(var.expected_agents * local.records_per_agent_s * var.average_record_bytes / 1000000 / local.model.kafka_partition_mb_s))
  kafka_partitions   = coalesce(var.kafka_partitions, local.derived_partitions)
  # Retention x compressed ingress x 3 replicas over the brokers, +30 %; at least 100 GiB; at
  # most 16 TiB (MSK's limit per broker: add brokers beyond it).
  derived_volume_gib = min(16384, max(100, ceil(local.ingress_compressed_mib_s * 3600 * var.kafka_retention_hours * 3 / local.kafka_broker_count / 1024 * 1.3)))
  kafka_volume_gib   = coalesce(var.kafka_volume_size_gib, local.derived_volume_gib)
}
