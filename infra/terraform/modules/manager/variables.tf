variable "create" {
  description = "Whether to create the manager API, the dispatcher and the schedule."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the manager API function and prefix of the other resources (the dispatcher is <name>-dispatcher)."
  type        = string
}

variable "package_path" {
  description = "Path of the manager API's zip, built by `npm run build:lambda` (dist/lambda/manager.zip)."
  type        = string
}

variable "handler" {
  description = "Handler of the manager API inside its zip: the `handler` export of manager/lambda.ts."
  type        = string
  default     = "manager/lambda.handler"
}

variable "dispatcher_package_path" {
  description = "Path of the dispatcher's zip, built by `npm run build:lambda` (dist/lambda/dispatcher.zip)."
  type        = string
}

variable "dispatcher_handler" {
  description = "Handler of the dispatcher inside its zip: the `handler` export of manager/dispatcher-lambda.ts."
  type        = string
  default     = "manager/dispatcher-lambda.handler"
}

variable "runtime" {
  description = "Lambda runtime of both functions: nodejs22.x, the newest Node.js runtime the AWS provider 5.100 accepts (nodejs24.x is refused at plan; with provider 6.x, nodejs24.x)."
  type        = string
  default     = "nodejs22.x"
}

variable "architecture" {
  description = "arm64 or x86_64 for both functions (plain JavaScript bundles)."
  type        = string
  default     = "arm64"
}

variable "memory_size" {
  description = "Memory of the manager API function in MB (password hashing at sign-in is its heaviest work)."
  type        = number
  default     = 1024
}

variable "timeout" {
  description = "Seconds a manager API invocation may run (API Gateway gives up after 30)."
  type        = number
  default     = 29
}

variable "reserved_concurrency" {
  description = "Most manager API containers at once (operators and consoles, not agents)."
  type        = number
  default     = 20
}

variable "dispatcher_memory_size" {
  description = "Memory of the dispatcher in MB."
  type        = number
  default     = 1024
}

variable "dispatcher_timeout" {
  description = "Seconds a dispatcher run may last; with the one-minute schedule, 60 keeps about one run at a time. A run stops starting ticks 20 s before its end (a gateway call's 15 s timeout plus a margin), so 60 leaves about 40 s of ticks."
  type        = number
  default     = 60

  validation {
    condition     = var.dispatcher_timeout >= 30 && var.dispatcher_timeout <= 900
    error_message = "dispatcher_timeout must be 30 to 900 seconds: a run starts no tick in its last 20 s (manager/dispatcher-lambda.ts DEFAULT_RESERVE_MS), so less would leave it (almost) no time to work."
  }
}

variable "dispatcher_reserved_concurrency" {
  description = "Most dispatcher runs at once. Leases make concurrent runs safe, and 2 lets a run that overlaps the next schedule finish; more only adds contention on the same leases."
  type        = number
  default     = 2
}

variable "dispatcher_schedule" {
  description = "EventBridge schedule of the dispatcher (each run ticks until idle or until 20 s before its timeout)."
  type        = string
  default     = "rate(1 minute)"
}

variable "gateway_control_port" {
  description = "The gateways' control API port (FLEETGATE_HTTP_PORT), where the dispatcher and the API send signed command batches."
  type        = number
  default     = 6752
}

variable "aksk_secret_arn" {
  description = "ARN of the AK/SK secret (<name>/aksk), read at cold start into FLEETGATE_AKSK by both functions."
  type        = string
}

variable "manager_secret_arn" {
  description = "ARN of the manager token-signing secret (<name>/manager), read at cold start into FLEETGATE_MANAGER_SECRET by the API."
  type        = string
}

variable "table_arns" {
  description = "Table ARN per table key of platform/store/schema.ts (module.tables.table_arns)."
  type        = map(string)
}

variable "index_arns" {
  description = "Index ARN per table key and index name (module.tables.index_arns)."
  type        = map(map(string))
}

variable "registry_table_arn" {
  description = "ARN of the registry table, which the manager API only Queries (the gateways known to discovery)."
  type        = string
}

variable "table_prefix" {
  description = "FLEETGATE_TABLE_PREFIX of both functions."
  type        = string
}

variable "log_level" {
  description = "FLEETGATE_LOG_LEVEL of both functions."
  type        = string
  default     = "info"
}

variable "vpc_id" {
  description = "VPC of the functions' network interfaces."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (the gateways and the Secrets Manager endpoint are inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the functions."
  type        = list(string)
}

variable "access" {
  description = "private (default): the API on an internal balancer, reachable from the VPC and allowed_cidr_blocks. public: an internet-facing balancer, HTTPS (certificate_arn) and only from allowed_cidr_blocks."
  type        = string
  default     = "private"

  validation {
    condition     = contains(["private", "public"], var.access)
    error_message = "access is private or public."
  }
}

variable "allowed_cidr_blocks" {
  description = "Who may reach the manager API (empty: the VPC's CIDR). Required with access = \"public\", and never 0.0.0.0/0 or ::/0."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.allowed_cidr_blocks, "0.0.0.0/0") && !contains(var.allowed_cidr_blocks, "::/0")
    error_message = "The manager API sends tasks and configs to every agent: list the networks that may reach it, not the whole internet."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the API's DNS name: the listener is HTTPS on 443 with it (required with access = \"public\"), else plain HTTP on 80 on the internal balancer."
  type        = string
  default     = ""
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing balancer (access = \"public\")."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key of the environments, log groups and secrets."
  type        = string
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
