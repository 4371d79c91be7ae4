output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = try(aws_msk_cluster.this[0].arn, "")
}

output "cluster_name" {
  description = "Name of the MSK cluster (the dimension of its CloudWatch metrics)."
  value       = try(aws_msk_cluster.this[0].cluster_name, "")
}

output "bootstrap_brokers" {
  description = "Plaintext bootstrap brokers (host:9092,...), the value of FLEETGATE_KAFKA_BROKERS."
  value       = try(aws_msk_cluster.this[0].bootstrap_brokers, "")
}

output "bootstrap_brokers_tls" {
  description = "TLS bootstrap brokers (host:9094,...) for consumers that speak TLS."
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
