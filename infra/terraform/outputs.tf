output "gateway_address" {
  description = "DNS name of the gateways' Network Load Balancer (port 6751): the target of the agents' DNS name (docs/deploy.md, step 6)."
  value       = module.gateways.load_balancer_dns_name
}

output "discovery_url" {
  description = "HTTPS base URL of the discovery API."
  value       = module.discovery.api_endpoint
}

output "discovery_http_address" {
  description = "host:8088 of the plain-HTTP discovery balancer: what stock agents are built with as serviceDiscoveryHost (docs/deploy.md, step 7)."
  value       = module.discovery.http_address
}

output "manager_url" {
  description = "HTTPS base URL of the manager API."
  value       = module.manager.api_endpoint
}

output "gateway_discovery_addrs" {
  description = "FLEETGATE_SD_ADDRS of the gateways (empty: they do not register)."
  value       = local.gateway_discovery_addrs
}

output "kafka_bootstrap_brokers" {
  description = "FLEETGATE_KAFKA_BROKERS of the gateways (TLS, port 9094, unless kafka_tls is false)."
  value       = local.kafka_brokers
}

output "kafka_bootstrap_brokers_tls" {
  description = "TLS bootstrap brokers for consumers."
  value       = module.kafka.bootstrap_brokers_tls
}

output "pki_secret_name" {
  description = "Secret to put the gateway TLS files in (docs/deploy.md, step 3)."
  value       = module.secrets.pki_secret_name
}

output "aksk_secret_name" {
  description = "Secret to put FLEETGATE_AKSK in (docs/deploy.md, step 3)."
  value       = module.secrets.aksk_secret_name
}

output "manager_secret_name" {
  description = "Secret to put FLEETGATE_MANAGER_SECRET in (docs/deploy.md, step 3)."
  value       = module.secrets.manager_secret_name
}

output "table_names" {
  description = "DynamoDB table per table key of platform/store/schema.ts."
  value       = module.tables.table_names
}

output "ecs_cluster_name" {
  description = "ECS cluster of the gateways."
  value       = module.gateways.cluster_name
}

output "ecs_service_name" {
  description = "ECS service of the gateways."
  value       = module.gateways.service_name
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the deployment."
  value       = module.observability.dashboard_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "kms_key_arn" {
  description = "The deployment's KMS key."
  value       = aws_kms_key.this.arn
}

output "sizing" {
  description = "What sizing.tf derived from expected_agents with the capacity model (capacity.tf.json), with the checks behind it (see README.md)."
  value = {
    expected_agents               = var.expected_agents
    cpu_us_per_agent_s            = floor(local.cpu_us_per_agent_s * 10) / 10
    agents_by_cpu                 = local.agents_by_cpu
    agents_by_memory              = local.agents_by_memory
    agents_by_storm               = local.agents_by_storm
    gateway_max_connections       = local.gateway_max_connections
    planned_agents_per_gateway    = local.planned_agents_per_gateway
    gateway_count                 = local.gateway_count
    gateway_max_count             = local.gateway_max_count
    gateway_vcpus                 = local.gateway_vcpus
    gateway_workers               = local.gateway_workers
    agents_per_gateway_expected   = local.agents_per_gateway_expected
    steady_cpu_share              = floor(local.steady_cpu_share * 1000) / 1000
    zone_loss_cpu_share           = floor(local.zone_loss_cpu_share * 1000) / 1000
    saturation_agents             = local.saturation_agents
    memory_for_agents_mib         = local.memory_for_agents_mib
    zone_loss_readmit_seconds     = local.zone_loss_readmit_seconds
    full_restart_readmit_seconds  = local.full_restart_readmit_seconds
    agents_table_warm_write_units = local.agents_table_warm_write_units
    agents_table_warm_read_units  = local.agents_table_warm_read_units
    kafka_ingress_raw_mib_s       = ceil(local.ingress_raw_mib_s)
    kafka_broker_disk_write_mib_s = ceil(local.broker_disk_write_mib_s)
    kafka_broker_count            = local.kafka_broker_count
    kafka_partitions              = local.kafka_partitions
    kafka_volume_gib              = local.kafka_volume_gib
    kafka_volume_capped           = local.derived_volume_gib >= 16384
  }
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways this deployment created (none in an existing VPC)."
  value       = module.network.nat_public_ips
}

output "console_url" {
  description = "URL of the operator console: the manager Lambda serves it from its zip on its HTTP API's $default route, same origin as the API (docs/deploy.md)."
  value       = "${module.manager.api_endpoint}/"
}
