variable "create" {
  description = "Whether to create the gateway service and its load balancer."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the ECS cluster and service, and prefix of the other resources."
  type        = string
}

variable "image" {
  description = "Gateway container image built from the repository's Dockerfile (e.g. <account>.dkr.ecr.<region>.amazonaws.com/fleetgate:0.1.0)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC: the control API (6752) accepts it by default, and so does egress."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks, one per availability zone."
  type        = list(string)
}

variable "load_balancer_subnet_ids" {
  description = "Subnets of the Network Load Balancer: public ones for an internet-facing balancer, private ones for an internal one."
  type        = list(string)
}

variable "load_balancer_internal" {
  description = "Internal balancer (agents reach the VPC through a VPN, Direct Connect or peering) instead of an internet-facing one."
  type        = bool
  default     = false
}

variable "agent_cidr_blocks" {
  description = "Where agents connect from: allowed on 6751 at the balancer and at the tasks (agents told by discovery dial the tasks' addresses directly)."
  type        = list(string)
}

variable "control_api_cidr_blocks" {
  description = "Allowed on the control API (6752, and 6752 + i for process i with processes > 1: AK/SK-signed /conn/*, /command, plus /metrics). Empty: the VPC's CIDR."
  type        = list(string)
  default     = []
}

################################################################################
# Capacity
################################################################################

variable "launch_type" {
  description = "FARGATE (default: no hosts to run) or EC2 (an Auto Scaling group of ECS-optimized hosts; cheaper per agent for large fleets, see infra/terraform/README.md)."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["FARGATE", "EC2"], var.launch_type)
    error_message = "launch_type is FARGATE or EC2."
  }
}

variable "cpu" {
  description = "CPU units of one gateway task (1024 = one vCPU). The agent transport runs on one core (the main thread); the rest runs ingest workers."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Memory of one gateway task in MiB; the connection limit follows from it (max_connections)."
  type        = number
  default     = 8192
}

variable "max_connections" {
  description = "Connection limit of each gateway task (the gateway cannot see a container's memory limit, so it is given explicitly; the root module derives it from memory): FLEETGATE_MAX_CONNECTIONS, divided among the processes (ceil(max_connections / processes) each)."
  type        = number
}

variable "workers" {
  description = "FLEETGATE_WORKERS: ingest worker threads per gateway process (its share of the vCPUs - 1)."
  type        = number
  default     = 1
}

variable "processes" {
  description = "FLEETGATE_PROCESSES: gateway processes per task sharing the agent port (SO_REUSEPORT, Node.js >= 22.12 in the image). Each gets ceil(max_connections / processes) connections, the control API port 6752 + i (opened to control_api_cidr_blocks) and a scrape of its /metrics; the per-gateway autoscaling target and alarms are divided the same way, because the sidecar publishes one datapoint per process."
  type        = number
  default     = 1

  validation {
    condition     = var.processes >= 1 && var.processes == floor(var.processes) && var.processes <= max(1, floor(var.cpu / 1024))
    error_message = "processes is an integer from 1 to the task's vCPUs (cpu / 1024)."
  }
}

variable "desired_count" {
  description = "Gateways at creation; autoscaling moves it between min_count and max_count afterwards."
  type        = number
}

variable "min_count" {
  description = "Fewest gateways autoscaling keeps (at least one per availability zone)."
  type        = number
}

variable "max_count" {
  description = "Most gateways autoscaling starts."
  type        = number
}

variable "target_connections_per_gateway" {
  description = "Target of autoscaling: the average number of connected agents per gateway (the custom metric elkeid_ac_grpc_conn_count)."
  type        = number
}

variable "kafka_client_cert" {
  description = "Present a client certificate to the brokers (MSK TLS client authentication): the PKI secret's kafka_client_crt and kafka_client_key keys, issued by the brokers' ACM Private CA."
  type        = bool
  default     = false
}

variable "target_cpu_percent" {
  description = "Second target of autoscaling: the service's average CPU utilisation (the capacity model's CPU target: 60). A gateway's transport is one event loop, so CPU binds before connections at high event rates."
  type        = number
  default     = 60
}

variable "scale_out_event_loop_lag_ms" {
  description = "Third trigger: add gateways while the worst gateway's event-loop delay p99 (fleetgate_nodejs_eventloop_lag_p99_seconds) stays above this many milliseconds for three minutes."
  type        = number
  default     = 500
}

variable "health_check_grace_seconds" {
  description = "Seconds after a task starts during which ECS ignores failed health checks (a new gateway's first minutes are a wave of handshakes)."
  type        = number
  default     = 180
}

variable "ephemeral_storage_gib" {
  description = "Fargate task storage in GiB (21-200): the durable spool (10 GiB bound) lives here while Kafka is unreachable."
  type        = number
  default     = 30
}

variable "ec2_instance_type" {
  description = "With launch_type = EC2: host instance type."
  type        = string
  default     = "c7i.2xlarge"
}

variable "ec2_min_size" {
  description = "With launch_type = EC2: fewest hosts."
  type        = number
  default     = 3
}

variable "ec2_max_size" {
  description = "With launch_type = EC2: most hosts (ECS managed scaling adds hosts as tasks need them)."
  type        = number
  default     = 30
}

variable "ec2_root_volume_gib" {
  description = "With launch_type = EC2: root volume of each host in GiB (images and every task's spool)."
  type        = number
  default     = 200
}

################################################################################
# Behaviour
################################################################################

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL. The gateway evicts itself from discovery, sends GOAWAY, ends each stream after its records are stored (grace 20 s), then closes the sink: 60 s leaves room for a slow Kafka flush. Fargate allows at most 120."
  type        = number
  default     = 60

  validation {
    condition     = var.stop_timeout >= 30 && var.stop_timeout <= 120
    error_message = "stop_timeout is 30-120 s: below 30 the 20 s drain grace plus the sink flush may be cut; ECS allows at most 120."
  }
}

variable "deployment_maximum_percent" {
  description = "ECS rolling deployment: new gateways started ahead of the old ones stopping, as a percentage of the desired count (150: half of the fleet rolls at a time, so half of the agents reconnect at once; 200: all at once)."
  type        = number
  default     = 150

  validation {
    condition     = var.deployment_maximum_percent > 100 && var.deployment_maximum_percent <= 200
    error_message = "deployment_maximum_percent is above 100 (old gateways stop only after new ones are healthy) and at most 200."
  }
}

variable "deregistration_delay" {
  description = "Seconds the balancer keeps a stopping task registered before ECS sends SIGTERM. Agents' long-lived streams outlive any delay, so it is short: the gateway's own drain ends them."
  type        = number
  default     = 10
}

variable "nofile_limit" {
  description = "ulimit nofile of the gateway container (one descriptor per agent, plus spool and Kafka)."
  type        = number
  default     = 1048576
}

variable "identity" {
  description = "FLEETGATE_IDENTITY: fleet (one shared client certificate, stock agents) or per-agent."
  type        = string
  default     = "fleet"

  validation {
    condition     = contains(["fleet", "per-agent"], var.identity)
    error_message = "identity is fleet or per-agent."
  }
}

variable "kafka_brokers" {
  description = "FLEETGATE_KAFKA_BROKERS (host:port,...); empty: spool-only."
  type        = string
  default     = ""
}

variable "kafka_tls" {
  description = "Speak TLS to the brokers (FLEETGATE_KAFKA_TLS=1): true for MSK's TLS listener (9094)."
  type        = bool
  default     = true
}

variable "kafka_topic" {
  description = "FLEETGATE_KAFKA_TOPIC."
  type        = string
  default     = "hids_svr"
}

variable "kafka_compression" {
  description = "FLEETGATE_KAFKA_COMPRESSION: none, gzip, snappy, lz4 or zstd."
  type        = string
  default     = "lz4"
}

variable "discovery_addrs" {
  description = "FLEETGATE_SD_ADDRS: discovery the gateways register with, AK/SK-signed: https:// URLs (the discovery HTTP API) or host:port (plain HTTP, as Elkeid's SD). Empty: gateways do not register (agents reach them through the balancer)."
  type        = list(string)
  default     = []
}

variable "table_prefix" {
  description = "FLEETGATE_TABLE_PREFIX: the prefix of the tables module's tables (agent status, configs, task results)."
  type        = string
  default     = "fleetgate-"
}

variable "table_arns" {
  description = "Table ARN per table key of platform/store/schema.ts (module.tables.table_arns); the task role is granted agents, configs, subtasks and chunks."
  type        = map(string)
}

variable "index_arns" {
  description = "Index ARN per table key and index name (module.tables.index_arns); the task role queries tags byAgent and subtasks byToken."
  type        = map(map(string))
}

variable "log_level" {
  description = "FLEETGATE_LOG_LEVEL."
  type        = string
  default     = "info"
}

variable "extra_environment" {
  description = "More environment variables of the gateway container (name => value); never secrets."
  type        = map(string)
  default     = {}
}

variable "pki_secret_arn" {
  description = "ARN of the Secrets Manager secret with the gateway's TLS files (JSON keys ca_crt, server_crt, server_key, crl_pem)."
  type        = string
}

variable "aksk_secret_arn" {
  description = "ARN of the Secrets Manager secret holding FLEETGATE_AKSK."
  type        = string
}

################################################################################
# Metrics and logs
################################################################################

variable "metrics_namespace" {
  description = "CloudWatch namespace the Prometheus metrics are published in (by the CloudWatch agent sidecar, as embedded metric format)."
  type        = string
  default     = "Fleetgate"
}

variable "cloudwatch_agent_image" {
  description = "CloudWatch agent image of the sidecar that scrapes the gateway's /metrics. Pin a tag you have tested."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300059.0b1207"
}

variable "log_retention_days" {
  description = "Days to keep the gateways' logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "ARN of the KMS key of the log groups and the secrets."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
