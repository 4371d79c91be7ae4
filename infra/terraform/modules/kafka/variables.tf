variable "create" {
  description = "Whether to create the MSK cluster (false: bring your own Kafka and give its brokers to the gateways)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the MSK cluster and prefix of its other resources."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers."
  type        = string
  default     = "3.8.x"
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (brokers talk to each other and answer clients inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone; brokers are spread evenly over them."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give at least two subnets in different zones (three for replication factor 3 across zones)."
  }
}

variable "client_security_group_ids" {
  description = "Security groups of the producers and consumers allowed to reach the brokers (the gateways' tasks)."
  type        = list(string)
  default     = []
}

variable "client_cidr_blocks" {
  description = "Extra CIDRs allowed to reach the brokers (consumers such as Elkeid HUB outside the gateways' security group)."
  type        = list(string)
  default     = []
}

variable "broker_count" {
  description = "Number of brokers; a multiple of the number of subnets. At least 3 for replication factor 3."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 3
    error_message = "Replication factor 3 with min.insync.replicas 2 needs at least 3 brokers."
  }
}

variable "broker_instance_type" {
  description = "Broker instance type (kafka.m7g.large upwards for production; see infra/terraform/README.md for the sizing)."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_volume_size_gib" {
  description = "EBS storage per broker in GiB (retention x compressed ingress x 3 replicas / brokers, plus headroom)."
  type        = number
  default     = 500
}

variable "topic" {
  description = "Topic of agent records (FLEETGATE_KAFKA_TOPIC)."
  type        = string
  default     = "hids_svr"
}

variable "partitions" {
  description = "Partitions of topics created automatically, the records topic included (Elkeid's install creates hids_svr with 200). A multiple of broker_count keeps leaders even."
  type        = number
  default     = 60
}

variable "auto_create_topics" {
  description = "Let the first producer create the records topic with the settings below (partitions, replication 3, min.insync.replicas 2). Set false to create it yourself (docs/deploy.md gives the command)."
  type        = bool
  default     = true
}

variable "retention_hours" {
  description = "How long the brokers keep records (log.retention.hours)."
  type        = number
  default     = 24
}

variable "max_message_bytes" {
  description = "Largest record batch a broker accepts (message.max.bytes). The gateway accepts agent messages up to 10 MiB, so a single large record must fit."
  type        = number
  default     = 11534336
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for encryption at rest."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch Logs group of the broker logs."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "client_broker_encryption" {
  description = "Encryption between clients and brokers: TLS (default; the gateways set FLEETGATE_KAFKA_TLS=1 and use port 9094) or TLS_PLAINTEXT (also opens plaintext 9092, for consumers without TLS)."
  type        = string
  default     = "TLS"

  validation {
    condition     = contains(["TLS", "TLS_PLAINTEXT"], var.client_broker_encryption)
    error_message = "client_broker_encryption is TLS or TLS_PLAINTEXT."
  }
}

variable "client_ca_arns" {
  description = "ACM Private CA ARNs whose certificates the brokers accept from clients (TLS client authentication); empty: unauthenticated clients (inside the security group only)."
  type        = list(string)
  default     = []
}
