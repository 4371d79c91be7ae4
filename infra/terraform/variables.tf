################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the deployment: prefix of every resource, the ECS cluster, the function and the dashboard."
  type        = string
  default     = "fleetgate"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 lower-case letters, digits or '-', starting with a letter (it prefixes names with tight length limits)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "azs" {
  description = "Availability zones (at least two; three keeps replication factor 3 and the zone-loss headroom of the sizing)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.60.0.0/16"
}

variable "existing_vpc" {
  description = "Deploy into an existing VPC instead of creating one (null: modules/network creates it). private_subnet_ids: one per zone of azs, in that order, with a way to ECR, S3, Secrets Manager, CloudWatch Logs and DynamoDB (NAT or VPC endpoints: docs/deploy.md, \"An existing VPC\"). public_subnet_ids: for internet-facing balancers (agents' NLB, a public manager API); may be empty when load_balancer_internal is true and manager_access is private."
  type = object({
    vpc_id             = string
    cidr_block         = string
    private_subnet_ids = list(string)
    public_subnet_ids  = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.existing_vpc == null ? true : length(var.existing_vpc.private_subnet_ids) >= 2
    error_message = "existing_vpc needs a private subnet in each zone of azs (at least two)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone (cheaper, less available)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days to keep every log group (gateways, discovery, API access, brokers, flow logs)."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "Addresses that receive the alarms."
  type        = list(string)
  default     = []
}

################################################################################
# Sizing inputs (sizing.tf turns them into gateway count, connection limit, brokers)
################################################################################

variable "expected_agents" {
  description = "Agents you expect connected at once. Everything in sizing.tf follows from it."
  type        = number

  validation {
    condition     = var.expected_agents >= 1
    error_message = "expected_agents must be positive."
  }
}

variable "records_per_agent_per_second" {
  description = "Average records an agent sends per second (heartbeats are 1/60 s; driver and plugin events make the rest). Measure yours: rate(fleetgate_records_received_total) / elkeid_ac_grpc_conn_count."
  type        = number
  default     = 2
}

variable "average_record_bytes" {
  description = "Average size of one record as it goes to Kafka (MQData and its key), before compression. The capacity model's event mix: about 800 bytes (docs/capacity.md, Kafka)."
  type        = number
  default     = 800
}

################################################################################
# Gateways
################################################################################

variable "gateway_image" {
  description = "Gateway container image built from the Dockerfile and pushed to a registry the tasks can pull from."
  type        = string
}

variable "gateway_launch_type" {
  description = "FARGATE or EC2 (Auto Scaling group of ECS-optimized hosts)."
  type        = string
  default     = "FARGATE"
}

variable "gateway_cpu" {
  description = "CPU units per gateway task (1024 per vCPU). The capacity model measures one event loop on 1 vCPU (the default): agents per gateway are sized for one core whatever this is; more vCPUs only add ingest workers."
  type        = number
  default     = 1024
}

variable "gateway_memory" {
  description = "Memory per gateway task in MiB (default 2 GiB, the capacity model's gateway): the memory bound of the connection limit (sizing.tf)."
  type        = number
  default     = 2048
}

variable "gateway_count" {
  description = "Gateways to run, overriding the count sizing.tf derives from expected_agents at the planned load per gateway (null: derived)."
  type        = number
  default     = null
}

variable "gateway_max_connections" {
  description = "FLEETGATE_MAX_CONNECTIONS of each gateway, overriding the limit sizing.tf derives with the capacity model (null: derived: the least of CPU, memory and storm re-admission)."
  type        = number
  default     = null

  validation {
    condition     = var.gateway_max_connections == null ? true : var.gateway_max_connections >= 1
    error_message = "gateway_max_connections must be positive (or null)."
  }
}

variable "gateway_processes" {
  description = "FLEETGATE_PROCESSES: gateway processes per task sharing the agent port (SO_REUSEPORT), each an event loop of its own with its own spool, control API port (6752 + i) and its share of the task's connection limit and ingest workers. 1 (the default) is what the capacity model measured: the sizing stays one event loop per task whatever this is (docs/deploy.md). Above 1 needs that many vCPUs (gateway_cpu) and an image on Node.js >= 22.12 (the repository's Dockerfile: Node 24); on an older Node every task's gateway exits with code 2 at start."
  type        = number
  default     = 1

  validation {
    condition     = var.gateway_processes >= 1 && var.gateway_processes == floor(var.gateway_processes) && var.gateway_processes <= max(1, floor(var.gateway_cpu / 1024))
    error_message = "gateway_processes is an integer from 1 to the task's vCPUs (gateway_cpu / 1024): each process is one event loop and needs a core."
  }
}

variable "gateway_ec2_instance_type" {
  description = "With gateway_launch_type = EC2: host instance type."
  type        = string
  default     = "c7i.2xlarge"
}

variable "agent_cidr_blocks" {
  description = "Where agents connect from (6751 at the balancer and the gateways)."
  type        = list(string)
}

variable "load_balancer_internal" {
  description = "Internal Network Load Balancer (agents reach the VPC privately) instead of an internet-facing one."
  type        = bool
  default     = false
}

variable "identity" {
  description = "FLEETGATE_IDENTITY: fleet (stock agents sharing one client certificate) or per-agent."
  type        = string
  default     = "fleet"
}

variable "gateway_register_with_discovery" {
  description = "Whether the gateways register (AK/SK-signed, every 5 s) with the discovery HTTP API. On in both modes: the registry (live agents per gateway, limits) is what the manager's rebalance and load control read. Whether agents are handed the gateways' own addresses is discovery_http_listener's (docs/deploy.md, \"How agents find a gateway\")."
  type        = bool
  default     = true
}

variable "gateway_discovery_addrs" {
  description = "More discovery nodes the gateways register with (https:// URLs, or host:port for an Elkeid SD over plain HTTP), besides this deployment's discovery API."
  type        = list(string)
  default     = []
}

variable "gateway_extra_environment" {
  description = "More environment variables of the gateway container (name => value), e.g. FLEETGATE_KAFKA_CA_FILE for a cluster with a private CA; never secrets."
  type        = map(string)
  default     = {}
}

variable "gateway_log_level" {
  description = "FLEETGATE_LOG_LEVEL of the gateways."
  type        = string
  default     = "info"
}

variable "cloudwatch_agent_image" {
  description = "Image of the metrics sidecar (CloudWatch agent). Pin a tested tag."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300059.0b1207"
}

################################################################################
# Tables
################################################################################

variable "table_prefix" {
  description = "FLEETGATE_TABLE_PREFIX: prefix of every table name."
  type        = string
  default     = "fleetgate-"
}

variable "table_billing_mode" {
  description = "PAY_PER_REQUEST (default) or PROVISIONED."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "table_provisioned_capacity" {
  description = "With PROVISIONED: read/write units per table key (and optionally per index), as in modules/tables."
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

variable "table_warm_throughput" {
  description = "Set the agents table's warm throughput to what the capacity model gives for expected_agents (sizing output agents_table_warm_*), with the AWS CLI at apply time (modules/tables). false: leave the table to warm up with traffic."
  type        = bool
  default     = true
}

variable "table_deletion_protection" {
  description = "Protect the tables from deletion."
  type        = bool
  default     = true
}

################################################################################
# Kafka
################################################################################

variable "create_kafka" {
  description = "Create an MSK cluster. false: give kafka_bootstrap_brokers of your own cluster (or leave empty for spool-only gateways)."
  type        = bool
  default     = true
}

variable "kafka_bootstrap_brokers" {
  description = "With create_kafka = false: FLEETGATE_KAFKA_BROKERS of an existing cluster (host:port,...)."
  type        = string
  default     = ""
}

variable "kafka_broker_instance_type" {
  description = "MSK broker size (kafka.m7g.*). sizing.tf derives the broker count from its storage bandwidth."
  type        = string
  default     = "kafka.m7g.large"
}

variable "kafka_broker_count" {
  description = "Brokers, overriding the derived count (null: derived; a multiple of the zones, at least 3)."
  type        = number
  default     = null
}

variable "kafka_client_ca_arns" {
  description = "ACM Private CA ARNs for MSK TLS client authentication: the brokers accept only clients with a certificate of these CAs, and the gateways present the PKI secret's kafka_client_crt / kafka_client_key (docs/deploy.md, step 3). Empty (default): no client authentication, the brokers reachable only from the gateways' security group and kafka_client_cidr_blocks."
  type        = list(string)
  default     = []
}

variable "kafka_partitions" {
  description = "Partitions of the records topic (null: derived with the capacity model: 10 MB/s each, at least 12)."
  type        = number
  default     = null
}

variable "kafka_retention_hours" {
  description = "Hours the brokers keep records."
  type        = number
  default     = 24
}

variable "kafka_volume_size_gib" {
  description = "EBS storage per broker in GiB (null: derived from ingress and retention)."
  type        = number
  default     = null
}

variable "kafka_client_encryption" {
  description = "TLS (default: the gateways produce to MSK's TLS listener, 9094, with FLEETGATE_KAFKA_TLS=1) or TLS_PLAINTEXT (also opens plaintext 9092 for consumers without TLS; the gateways still use TLS)."
  type        = string
  default     = "TLS"
}

variable "kafka_client_cidr_blocks" {
  description = "Networks of Kafka consumers (Elkeid HUB and the like) allowed to the brokers, besides the gateways."
  type        = list(string)
  default     = []
}

variable "kafka_tls" {
  description = "Whether the gateways speak TLS to Kafka (FLEETGATE_KAFKA_TLS=1). Only false for your own cluster (create_kafka = false) with a plaintext listener."
  type        = bool
  default     = true
}

variable "kafka_auto_create_topics" {
  description = "Let the first gateway that produces create the records topic with the broker defaults. false (default): the topic is created explicitly with the sized partitions (docs/deploy.md, step 5), and a typo'd topic name fails instead of creating a new topic."
  type        = bool
  default     = false
}

variable "kafka_topic" {
  description = "FLEETGATE_KAFKA_TOPIC: topic of agent records."
  type        = string
  default     = "hids_svr"
}

################################################################################
# Discovery
################################################################################

variable "discovery_package_path" {
  description = "Path of dist/lambda/discovery.zip, built by npm run build:lambda."
  type        = string
}

variable "manager_access" {
  description = "private (default): the manager API on an internal balancer, reachable from the VPC and manager_allowed_cidr_blocks. public: internet-facing, HTTPS only (manager_certificate_arn) and only from manager_allowed_cidr_blocks."
  type        = string
  default     = "private"

  validation {
    condition     = contains(["private", "public"], var.manager_access)
    error_message = "manager_access is private or public."
  }
}

variable "manager_allowed_cidr_blocks" {
  description = "Networks that may reach the manager API (empty: the VPC). Required for manager_access = \"public\"; 0.0.0.0/0 is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = var.manager_access == "private" || length(var.manager_allowed_cidr_blocks) > 0
    error_message = "manager_access = \"public\" needs manager_allowed_cidr_blocks: the networks of your operators and consoles."
  }

  validation {
    condition     = !contains(var.manager_allowed_cidr_blocks, "0.0.0.0/0") && !contains(var.manager_allowed_cidr_blocks, "::/0")
    error_message = "The manager API sends tasks and configs to every agent: list the networks that may reach it, not the whole internet."
  }
}

variable "manager_certificate_arn" {
  description = "ACM certificate for the manager API's DNS name: HTTPS on 443 (required for manager_access = \"public\"); empty: plain HTTP on 80, internal balancer only."
  type        = string
  default     = ""

  validation {
    condition     = var.manager_access == "private" || var.manager_certificate_arn != ""
    error_message = "manager_access = \"public\" needs manager_certificate_arn (HTTPS only on the internet)."
  }
}

variable "discovery_http_listener" {
  description = "Create the Application Load Balancer with a plain-HTTP listener on 8088 in front of discovery, for stock Elkeid agents (it forwards GET /registry/detail and /ping only). null: when load_balancer_internal is true: discovery answers the gateways' private addresses, which only agents routed into the VPC can dial, so an internet-facing deployment has no public discovery and its agents dial the balancer (docs/deploy.md). true with an internet-facing balancer makes the 8088 balancer public too."
  type        = bool
  default     = null
}

variable "discovery_reserved_concurrency" {
  description = "Most discovery containers at once (docs/discovery.md: about 96 readers per registry partition)."
  type        = number
  default     = 80
}

################################################################################
# Manager
################################################################################

variable "create_manager" {
  description = "Create the manager API (Lambda behind an HTTP API) and the task dispatcher (Lambda on a one-minute schedule)."
  type        = bool
  default     = true
}

variable "manager_package_path" {
  description = "Path of dist/lambda/manager.zip, built by npm run build:lambda."
  type        = string
}

variable "dispatcher_package_path" {
  description = "Path of dist/lambda/dispatcher.zip, built by npm run build:lambda."
  type        = string
}

variable "manager_reserved_concurrency" {
  description = "Most manager API containers at once (operators and consoles, not agents)."
  type        = number
  default     = 20
}

variable "dispatcher_reserved_concurrency" {
  description = "Most dispatcher runs at once (leases make overlapping runs safe; 2 lets a long run overlap the next schedule)."
  type        = number
  default     = 2
}
