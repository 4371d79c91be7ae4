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

  # 8 GiB per gateway -> FLEETGATE_MAX_CONNECTIONS 43,690; planned 29,126 per gateway (2/3 of
  # it); 1,000,000 / 29,126 -> 36 gateways (a multiple of 3). 4 vCPU: one core for the agent
  # transport (9 % busy at 27,778 agents x 2 records/s), three ingest workers.
  gateway_image  = var.gateway_image
  gateway_cpu    = 4096
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

  tags = {
    Project = "fleetgate"
    Fleet   = "1M"
  }
}
