variable "create" {
  description = "Whether to create the tables."
  type        = bool
  default     = true
}

variable "table_prefix" {
  description = "Prefix of every table name; the processes get the same value as FLEETGATE_TABLE_PREFIX."
  type        = string
  default     = "fleetgate-"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{0,200}$", var.table_prefix))
    error_message = "DynamoDB table names allow letters, digits, '_', '-' and '.'."
  }
}

variable "billing_mode" {
  description = "PAY_PER_REQUEST (on demand, the schema module's billing and the default) or PROVISIONED (then give provisioned_capacity)."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode is PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "provisioned_capacity" {
  description = "With billing_mode = PROVISIONED: read and write units per table key of platform/store/schema.ts (registry, agents, ...); each index gets the table's units unless listed in indexes. Tables not listed get default_capacity."
  type = map(object({
    read  = number
    write = number
    indexes = optional(map(object({
      read  = number
      write = number
    })), {})
  }))
  default = {}
}

variable "default_capacity" {
  description = "With billing_mode = PROVISIONED: units of a table (and its indexes) not listed in provisioned_capacity."
  type = object({
    read  = number
    write = number
  })
  default = {
    read  = 5
    write = 5
  }
}

variable "point_in_time_recovery" {
  description = "Continuous backups (point-in-time recovery, 35 days) on every table."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse DeleteTable on every table (turn off before terraform destroy)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the tables at rest."
  type        = string
}

variable "tags" {
  description = "Tags added to every table."
  type        = map(string)
  default     = {}
}

variable "warm_throughput" {
  description = "Warm throughput per table key (read and write units per second), set with the AWS CLI at apply time (main.tf says why). The root module passes the agents table's from the capacity model; {} sets none."
  type = map(object({
    read  = number
    write = number
  }))
  default = {}

  validation {
    condition     = alltrue([for k, v in var.warm_throughput : v.read >= 12000 && v.write >= 4000])
    error_message = "DynamoDB's warm throughput starts at 12,000 reads/s and 4,000 writes/s: ask for at least that."
  }
}
