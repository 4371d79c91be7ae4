################################################################################
# Sizing: agents expected -> gateways, their connection limit, brokers
#
# The measured figures are docs/capacity.md's (its "measured" table, from loadtest/results/*.json
# on a 2-vCPU AMD EPYC VM, Node 20.20.2; per gateway CPU-second); test/unit/capacity.test.ts fails
# when these locals and `npm run capacity` disagree:
#
#   124.5 KB  resident memory per streaming agent (bench:fleet; 85.1 KB idle in bench:gateway):
#             the larger, as the model takes it
#   536       new mTLS sessions per CPU-second (bench:gateway; ECDSA P-256, client certificate)
#   634,752   records per CPU-second on the transport path (bench:gateway, 20 per message)
#   107,584   records per gateway CPU-second end to end, agent -> Kafka acks=all (bench:ingest,
#             inline, paced)
#
# The gateway count, task size, connection limit and Kafka partitions of a planned fleet come
# from the same model: examples/million-agents/capacity.auto.tfvars.json (npm run capacity --
# --write) sets gateway_count, gateway_max_connections and kafka_partitions, which override
# what this file derives.
#
# The transport (TLS, HTTP/2, gRPC framing) runs on the gateway's main thread: one core per
# gateway whatever its size. Ingest workers (MQData, Kafka) use the other cores.
################################################################################

locals {
  bench_rss_per_agent_bytes  = 105370 # 102.9 KiB
  bench_handshakes_per_cpu_s = 536
  bench_records_per_cpu_s    = 634752
  bench_ingest_per_cpu_s     = 107584
  # Planned CPU utilisation of a gateway's cores by the record path: room for a burst, a
  # spool replay after a Kafka outage, and a zone loss's extra agents (x 3/2).
  ingest_cpu_target = 0.5

  # gateway/config/env.ts sizes its default limit the same way: half the memory, 96 KiB per
  # agent (86 KB measured plus room for buffers of busy agents).
  budget_per_agent_bytes = 96 * 1024
  memory_share_agents    = 0.5

  az_count = length(var.azs)

  # 1. Connection limit of one gateway (FLEETGATE_MAX_CONNECTIONS), unless given.
  gateway_max_connections = coalesce(var.gateway_max_connections, floor(var.gateway_memory * 1024 * 1024 * local.memory_share_agents / local.budget_per_agent_bytes))

  # 2. Planned agents per gateway: when one zone is lost, its agents reconnect to the gateways
  #    of the other zones, which must then still be at or under their limit.
  planned_agents_per_gateway = floor(local.gateway_max_connections * (local.az_count - 1) / local.az_count)

  # 3. Gateways: enough for expected_agents at the planned load, a multiple of the zones.
  derived_gateway_count = max(local.az_count, ceil(var.expected_agents / local.planned_agents_per_gateway / local.az_count) * local.az_count)
  gateway_count         = coalesce(var.gateway_count, local.derived_gateway_count)
  gateway_vcpus         = var.gateway_cpu / 1024
  # One vCPU: the pipeline runs inline (FLEETGATE_WORKERS=0), as docs/capacity.md measured it.
  gateway_workers = max(0, floor(local.gateway_vcpus) - 1)

  # 4. Checks on the main thread (one core) at the planned load.
  agents_per_gateway_expected = ceil(var.expected_agents / local.gateway_count)
  transport_core_share        = local.agents_per_gateway_expected * var.records_per_agent_per_second / local.bench_records_per_cpu_s
  memory_for_agents_mib       = ceil(local.agents_per_gateway_expected * local.bench_rss_per_agent_bytes / 1048576)
  # The whole record path (transport + MQData + Kafka) in vCPUs at the expected load, and the
  # share of the task's vCPUs it takes: keep it at or under ingest_cpu_target.
  ingest_vcpus_needed = local.agents_per_gateway_expected * var.records_per_agent_per_second / local.bench_ingest_per_cpu_s
  ingest_cpu_share    = local.ingest_vcpus_needed / local.gateway_vcpus
  # Re-admission: after a zone loss, that zone's agents handshake with the survivors; after a
  # full restart (all gateways at once, which a rolling deployment avoids), every agent does.
  zone_loss_readmit_seconds    = ceil((var.expected_agents / local.az_count) / (local.gateway_count * (local.az_count - 1) / local.az_count * local.bench_handshakes_per_cpu_s))
  full_restart_readmit_seconds = ceil(var.expected_agents / (local.gateway_count * local.bench_handshakes_per_cpu_s))

  # 5. Kafka. Records leave the gateways lz4-compressed; agent records (protobuf maps with
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
  kafka_partitions          = coalesce(var.kafka_partitions, local.kafka_broker_count * 20)
  # Retention x compressed ingress x 3 replicas over the brokers, +30 %; at least 100 GiB; at
  # most 16 TiB (MSK's limit per broker: add brokers beyond it).
  derived_volume_gib = min(16384, max(100, ceil(local.ingress_compressed_mib_s * 3600 * var.kafka_retention_hours * 3 / local.kafka_broker_count / 1024 * 1.3)))
  kafka_volume_gib   = coalesce(var.kafka_volume_size_gib, local.derived_volume_gib)
}
