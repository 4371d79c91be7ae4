output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = try(aws_msk_cluster.this[0].arn, "")
}

output "cluster_name" {
  description = "Name of the MSK cluster (the dimension of its CloudWatch metrics)."
  value       = try(aws_msk_cluster.this[0].cluster_name, "")
}

output "bootstrap_brokers" {
  description = "Plaintext bootstrap brokers (host:9092,...); empty when client_broker_encryption is TLS."
  value       = try(aws_msk_cluster.this[0].bootstrap_brokers, "")
}

output "bootstrap_brokers_tls" {
  description = "TLS bootstrap brokers (host:9094,...): the gateways' FLEETGATE_KAFKA_BROKERS (with FLEETGATE_KAFKA_TLS=1) and consumers'."
  value       = try(aws_msk_cluster.this[0].bootstrap_brokers_tls, "")
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = try(aws_security_group.this[0].id, "")
}

output "topic" {
  description = "Topic of agent records (FLEETGATE_KAFKA_TOPIC)."
  value       = var.topic
}

output "configuration_arn" {
  description = "ARN of the broker configuration carrying the topic defaults."
  value       = try(aws_msk_configuration.this[0].arn, "")
}

output "tls" {
  description = "Whether clients must speak TLS (FLEETGATE_KAFKA_TLS=1)."
  value       = var.client_broker_encryption == "TLS"
}
