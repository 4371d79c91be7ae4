output "pki_secret_arn" {
  description = "ARN of the PKI secret (JSON keys ca_crt, server_crt, server_key, crl_pem)."
  value       = try(aws_secretsmanager_secret.this["pki"].arn, "")
}

output "pki_secret_name" {
  description = "Name of the PKI secret, for aws secretsmanager put-secret-value."
  value       = try(aws_secretsmanager_secret.this["pki"].name, "")
}

output "aksk_secret_arn" {
  description = "ARN of the AK/SK secret (FLEETGATE_AKSK)."
  value       = try(aws_secretsmanager_secret.this["aksk"].arn, "")
}

output "aksk_secret_name" {
  description = "Name of the AK/SK secret, for aws secretsmanager put-secret-value."
  value       = try(aws_secretsmanager_secret.this["aksk"].name, "")
}

output "manager_secret_arn" {
  description = "ARN of the manager token-signing secret (FLEETGATE_MANAGER_SECRET)."
  value       = try(aws_secretsmanager_secret.this["manager"].arn, "")
}

output "manager_secret_name" {
  description = "Name of the manager secret, for aws secretsmanager put-secret-value."
  value       = try(aws_secretsmanager_secret.this["manager"].name, "")
}
