variable "create" {
  description = "Whether to create the discovery function and its API."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the function and prefix of its other resources."
  type        = string
}

variable "package_path" {
  description = "Path of the function's zip, built by `npm run build:lambda` (dist/lambda/discovery.zip)."
  type        = string
}

variable "handler" {
  description = "Handler inside the zip: the bundle keeps the source module's path, so it is the source's `handler` export of discovery/lambda.ts."
  type        = string
  default     = "discovery/lambda.handler"
}

variable "runtime" {
  description = "Lambda runtime: nodejs22.x, the newest Node.js runtime the AWS provider 5.100 accepts (nodejs24.x is refused at plan; with provider 6.x, nodejs24.x)."
  type        = string
  default     = "nodejs22.x"
}

variable "architecture" {
  description = "arm64 or x86_64 (the bundle is plain JavaScript, so either works; arm64 costs less)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture is arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU grows with it; 512 MB answers cached requests in microseconds)."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Seconds an invocation may run. A cache miss is one DynamoDB Query (short client timeouts, about 2 s worst case)."
  type        = number
  default     = 10
}

variable "reserved_concurrency" {
  description = "Most containers at once. Each warm container Queries a service name at most once a second; docs/discovery.md computes about 96 such readers per registry partition, so stay below that or raise the cache freshness first."
  type        = number
  default     = 80
}

variable "aksk_secret_arn" {
  description = "ARN of the AK/SK secret (<name>/aksk): the function reads it at cold start (FLEETGATE_AKSK_SECRET_ARN) to verify signed registrations and evictions."
  type        = string
}

variable "registry_table_arn" {
  description = "ARN of the registry table (the only table discovery reads and writes)."
  type        = string
}

variable "table_prefix" {
  description = "FLEETGATE_TABLE_PREFIX of the tables."
  type        = string
}

variable "log_level" {
  description = "FLEETGATE_LOG_LEVEL of the function."
  type        = string
  default     = "info"
}

variable "vpc_id" {
  description = "VPC the function runs in (it reaches DynamoDB through the VPC's gateway endpoint)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (the Secrets Manager interface endpoint is reached inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the function's network interfaces."
  type        = list(string)
}

variable "create_http_listener" {
  description = "Create the Application Load Balancer with a plain-HTTP listener on 8088 in front of the function, for stock Elkeid agents (which ask discovery over http:// only)."
  type        = bool
  default     = true
}

variable "http_listener_internal" {
  description = "Whether the 8088 balancer is internal (private subnets: agents reach the VPC privately) or internet-facing (public subnets)."
  type        = bool
  default     = true
}

variable "private_subnet_ids" {
  description = "Private subnets of an internal 8088 balancer (one per zone)."
  type        = list(string)
  default     = []
}

variable "public_subnet_ids" {
  description = "Public subnets of an internet-facing 8088 balancer (one per zone)."
  type        = list(string)
  default     = []
}

variable "agent_cidr_blocks" {
  description = "Networks the agents ask discovery from (ingress to the 8088 balancer)."
  type        = list(string)
  default     = []
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the API accepts before answering 429 (a reconnect storm of a whole fleet asks once per agent)."
  type        = number
  default     = 10000
}

variable "throttling_burst_limit" {
  description = "Burst of requests the API accepts above the steady rate."
  type        = number
  default     = 5000
}

variable "log_retention_days" {
  description = "Days to keep the function's and the API's logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "ARN of the KMS key for the log groups and the function's environment."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
