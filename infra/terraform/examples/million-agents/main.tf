################################################################################
# One million agents. The arithmetic behind every number is in README.md beside this file.
################################################################################

provider "aws" {
  region = var.region
}

module "fleetgate" {
  source = "../.."

  name = "fleetgate"
  # Three zones: the planned load leaves one zone's worth of headroom (README.md).
  azs = var.azs

  # Sizing inputs from capacity.auto.tfvars.json (`npm run capacity -- --write`); the gateway
  # count, connection limit and autoscaling target follow from them in ../../sizing.tf with the
  # same model, and the deploy table in README.md shows the result.
  expected_agents              = var.expected_agents
  records_per_agent_per_second = var.records_per_agent_per_second
  average_record_bytes         = var.average_record_bytes

  gateway_image  = var.gateway_image
  gateway_cpu    = var.gateway_cpu
  gateway_memory = var.gateway_memory

  # Brokers are not in the model (docs/capacity.md, Kafka): chosen here for the model's ingress.
  # 1,000,000 x 2 records/s x 803 B = 1,532 MiB/s raw; ~511 MiB/s at the 3:1 lz4 sizing.tf
  # assumes (the model measures ~5:1 on one batch: 297 MiB/s), 1,532 MiB/s written across the
  # brokers (replication 3). kafka.m7g.4xlarge: 5,000 Mbit/s EBS baseline, planned at half
  # (298 MiB/s) -> 6 brokers by bandwidth; 12 h of retention needs 511 MiB/s x 43,200 s x 3 =
  # 63 TiB: 9 brokers, 7.0 TiB each + 30 % = 9,334 GiB of volume (within MSK's 16 TiB).
  kafka_broker_instance_type = "kafka.m7g.4xlarge"
  kafka_broker_count         = 9
  kafka_retention_hours      = 12
  kafka_partitions           = var.kafka_partitions

  table_billing_mode = var.table_billing_mode

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
