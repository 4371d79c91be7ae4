output "dns_name" {
  description = "DNS name of the balancer (empty when not created)."
  value       = try(aws_lb.this[0].dns_name, "")
}

output "arn_suffix" {
  description = "ARN suffix of the balancer, for CloudWatch metrics (empty when not created)."
  value       = try(aws_lb.this[0].arn_suffix, "")
}

output "security_group_id" {
  description = "ID of the balancer's security group (empty when not created)."
  value       = try(aws_security_group.this[0].id, "")
}

output "port" {
  description = "Port of the listener."
  value       = var.port
}

output "https" {
  description = "Whether the listener speaks HTTPS."
  value       = local.https
}
