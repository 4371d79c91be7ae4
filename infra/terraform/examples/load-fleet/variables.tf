variable "region" {
  description = "AWS region to run the load fleet in (the fleetgate deployment's)."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the cluster, bucket prefix and log group."
  type        = string
  default     = "fleetgate-load"
}

variable "vpc_id" {
  description = "VPC whose private subnets reach the gateways (the fleetgate deployment's, or one peered with it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the simulator tasks (with a route to ECR, S3 and Secrets Manager: NAT or VPC endpoints)."
  type        = list(string)
}

variable "sim_image" {
  description = "The fleetgate image (the same one the gateways run: `fleetgate sim` is in it)."
  type        = string
}

variable "aws_cli_image" {
  description = "Image of the sidecar that uploads each task's report to S3 once the simulator ends (the AWS CLI v2; pin a version)."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
}

variable "pki_secret_arn" {
  description = "Secrets Manager secret with the agents' TLS files as JSON keys ca_crt, client_crt, client_key (docs/deploy.md, step 3; the client certificate of your agents, signed by the gateways' CA)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts pki_secret_arn (the fleetgate deployment's kms_key_arn output)."
  type        = string
}

variable "discovery_url" {
  description = "Discovery base URL the simulated agents ask, e.g. http://internal-fleetgate-discovery-http-123.eu-west-1.elb.amazonaws.com:8088 (the deployment's discovery_http_address). Empty: dial gateway_address only."
  type        = string
  default     = ""
}

variable "gateway_address" {
  description = "host:port the agents dial when discovery answers nothing (the deployment's gateway_address output with :6751), as stock agents fall back to their compiled-in address."
  type        = string
}

variable "agents" {
  description = "Simulated agents in all."
  type        = number
  default     = 1000000

  validation {
    condition     = var.agents >= 1
    error_message = "agents must be positive."
  }
}

variable "events_per_agent_per_second" {
  description = "Events per agent per second (the simulator's --rate)."
  type        = number
  default     = 2
}

variable "scenario" {
  description = "Simulator scenario (steady, storm, gateway-loss, kafka-outage, rolling-task, ...: `fleetgate sim --help`)."
  type        = string
  default     = "steady"
}

variable "duration_seconds" {
  description = "Length of the run (the simulator's --duration)."
  type        = number
  default     = 1800
}

variable "task_cpu" {
  description = "CPU units per simulator task; one simulator process per vCPU (--processes)."
  type        = number
  default     = 4096
}

variable "task_memory" {
  description = "Memory per simulator task in MiB."
  type        = number
  default     = 8192
}

variable "report_retention_days" {
  description = "Days the reports and logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
