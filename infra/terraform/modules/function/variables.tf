variable "create" {
  description = "Whether to create the function and everything around it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the function and prefix of its other resources."
  type        = string
}

variable "description" {
  description = "Description of the function (and of its HTTP API)."
  type        = string
}

variable "package_path" {
  description = "Path of the function's zip, built by `npm run build:lambda` (dist/lambda/<name>.zip)."
  type        = string
}

variable "handler" {
  description = "Handler inside the zip (the source module's path without .ts, a dot, the export): discovery/lambda.handler and the like; the calling module's variable defaults name the project's handlers."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime: nodejs22.x, the newest Node.js runtime the AWS provider 5.100 accepts (nodejs24.x is refused at plan; with provider 6.x, nodejs24.x)."
  type        = string
  default     = "nodejs22.x"
}

variable "architecture" {
  description = "arm64 or x86_64 (the bundles are plain JavaScript, so either works; arm64 costs less)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture is arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU grows with it)."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Seconds an invocation may run."
  type        = number
  default     = 10
}

variable "reserved_concurrency" {
  description = "Most containers of this function at once."
  type        = number
}

variable "policy_json" {
  description = "The caller's IAM policy document (its DynamoDB statements), merged with the function's own (log group, key, tracing)."
  type        = string
}

variable "secrets" {
  description = "Environment variable => Secrets Manager ARN (FLEETGATE_AKSK_SECRET_ARN, FLEETGATE_MANAGER_SECRET_ARN). The function reads the values at cold start; the role may read exactly these secrets."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "More environment variables (never secrets: the environment is in the state and in the function's configuration)."
  type        = map(string)
  default     = {}
}

variable "table_prefix" {
  description = "FLEETGATE_TABLE_PREFIX of the function."
  type        = string
}

variable "log_level" {
  description = "FLEETGATE_LOG_LEVEL of the function."
  type        = string
  default     = "info"
}

variable "vpc_id" {
  description = "VPC of the function's network interfaces."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC, the destination of vpc_egress_ports."
  type        = string
}

variable "vpc_egress_ports" {
  description = "TCP ports the function may reach inside the VPC besides DynamoDB (443: the Secrets Manager interface endpoint; 6752: the gateways' control API)."
  type        = list(number)
  default     = []
}

variable "subnet_ids" {
  description = "Private subnets of the function's network interfaces."
  type        = list(string)
}

variable "create_http_api" {
  description = "Put an API Gateway HTTP API ($default stage and route, payload 2.0) in front of the function."
  type        = bool
  default     = false
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the HTTP API accepts before answering 429."
  type        = number
  default     = 1000
}

variable "throttling_burst_limit" {
  description = "Burst of requests the HTTP API accepts above the rate."
  type        = number
  default     = 500
}

variable "log_retention_days" {
  description = "Retention of the function's and the API's log groups."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key of the environment, the log groups and the secrets."
  type        = string
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}

variable "http_api_routes" {
  description = "Route keys of the HTTP API (\"$default\": everything; or \"POST /registry/register\" and the like, so the API answers only what its clients need)."
  type        = list(string)
  default     = ["$default"]
}
