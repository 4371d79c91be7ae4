output "gateway_address" {
  description = "DNS name of the gateways' balancer (port 6751)."
  value       = module.fleetgate.gateway_address
}

output "discovery_url" {
  description = "HTTPS base URL of discovery."
  value       = module.fleetgate.discovery_url
}

output "pki_secret_name" {
  description = "Secret for the gateway TLS files."
  value       = module.fleetgate.pki_secret_name
}

output "aksk_secret_name" {
  description = "Secret for FLEETGATE_AKSK."
  value       = module.fleetgate.aksk_secret_name
}

output "manager_secret_name" {
  description = "Secret for FLEETGATE_MANAGER_SECRET."
  value       = module.fleetgate.manager_secret_name
}

output "discovery_http_address" {
  description = "host:8088 of plain-HTTP discovery for stock agents."
  value       = module.fleetgate.discovery_http_address
}

output "manager_url" {
  description = "HTTPS base URL of the manager API."
  value       = module.fleetgate.manager_url
}

output "sizing" {
  description = "What the sizing derived."
  value       = module.fleetgate.sizing
}

output "kafka_bootstrap_brokers" {
  description = "Plaintext bootstrap brokers (inside the VPC)."
  value       = module.fleetgate.kafka_bootstrap_brokers
}

output "kafka_bootstrap_brokers_tls" {
  description = "TLS bootstrap brokers for consumers."
  value       = module.fleetgate.kafka_bootstrap_brokers_tls
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the deployment."
  value       = module.fleetgate.dashboard_name
}
