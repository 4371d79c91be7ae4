################################################################################
# One million agents. The arithmetic behind every number is in README.md beside this file.
################################################################################

provider "aws" {
  region = var.region
}

module "fleetgate" {
  source = "../.."

  name = "fleetgate"
  # Three zones: losing one leaves two thirds of the gateways, each still under its limit.
  azs = var.azs

  expected_agents              = 1000000
  records_per_agent_per_second = 2
  average_record_bytes         = 600

  # README's measured figures: 86.1 KB RSS per idle mTLS agent, 528 handshakes per CPU-s,
  # 638,050 records per CPU-s on the transport path, 109,290-133,912 records per gateway CPU-s
  # agent -> Kafka (acks=all).
  # 8 GiB per gateway -> FLEETGATE_MAX_CONNECTIONS 43,690 (96 KiB budgeted per agent, 86.1 KB
  # measured); planned 29,126 per gateway (2/3 of it, survives a zone loss); 1,000,000 / 29,126
  # -> 36 gateways (a multiple of 3), 27,778 agents each (2.28 GiB of RSS).
  # 2 vCPU: 27,778 x 2 records/s = 55,556 records/s / 109,290 per CPU-s = 0.51 vCPU, 25 % of
  # the task (50 % planned at most; 38 % with a zone's agents on top). The main thread (transport,
  # 8.7 % of its core) and one ingest worker: the shape bench:ingest measured.
  gateway_image  = var.gateway_image
  gateway_cpu    = 2048
  gateway_memory = 8192

  # 1,000,000 x 2 records/s x 600 B = 1,144 MiB/s raw, ~381 MiB/s lz4-compressed, 1,144 MiB/s
  # written across the brokers (replication 3). kafka.m7g.4xlarge: 5,000 Mbit/s EBS baseline,
  # planned at half (298 MiB/s) -> 4 brokers by bandwidth, 6 rounded to the zones; but 12 h of
  # retention needs 381 MiB/s x 43,200 s x 3 = 47 TiB: 9 brokers at ~6.8 TiB each.
  kafka_broker_instance_type = "kafka.m7g.4xlarge"
  kafka_broker_count         = 9
  kafka_retention_hours      = 12
  kafka_partitions           = 360

  # The registry takes 36 gateways x 2 names / 5 s = 14 writes/s: on demand is right.
  table_billing_mode = "PAY_PER_REQUEST"

  agent_cidr_blocks = var.agent_cidr_blocks
  alarm_emails      = var.alarm_emails

  discovery_package_path         = "${path.root}/../../../../dist/lambda/discovery.zip"
  discovery_reserved_concurrency = 80
  manager_package_path           = "${path.root}/../../../../dist/lambda/manager.zip"
  dispatcher_package_path        = "${path.root}/../../../../dist/lambda/dispatcher.zip"

  tags = {
    Project = "fleetgate"
    Fleet   = "1M"
  }
}
