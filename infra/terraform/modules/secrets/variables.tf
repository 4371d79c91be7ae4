variable "create" {
  description = "Whether to create the secrets."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of the secrets (secrets are named <name>/pki, <name>/aksk and <name>/manager)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the secrets."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (7-30; 0 deletes at once)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every secret."
  type        = map(string)
  default     = {}
}
