output "pki_secret_arn" {
  description = "ARN of the PKI secret (JSON keys ca_crt, server_crt, server_key, crl_pem)."
  value       = try(aws_secretsmanager_secret.pki[0].arn, "")
}

output "pki_secret_name" {
  description = "Name of the PKI secret, for aws secretsmanager put-secret-value."
  value       = try(aws_secretsmanager_secret.pki[0].name, "")
}

output "aksk_secret_arn" {
  description = "ARN of the AK/SK secret (FLEETGATE_AKSK)."
  value       = try(aws_secretsmanager_secret.aksk[0].arn, "")
}

output "aksk_secret_name" {
  description = "Name of the AK/SK secret, for aws secretsmanager put-secret-value."
  value       = try(aws_secretsmanager_secret.aksk[0].name, "")
}
