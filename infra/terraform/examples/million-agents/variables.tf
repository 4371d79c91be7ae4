variable "region" {
  description = "AWS region to deploy in."
  type        = string
  default     = "eu-west-1"
}

variable "azs" {
  description = "Three availability zones of the region (named explicitly, so the deployment does not move when AWS adds a zone)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "gateway_image" {
  description = "Gateway image pushed to ECR (docs/deploy.md, step 2), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0."
  type        = string
}

variable "agent_cidr_blocks" {
  description = "Where the agents connect from."
  type        = list(string)
}

variable "alarm_emails" {
  description = "Addresses that receive the alarms."
  type        = list(string)
  default     = []
}

################################################################################
# Sizing inputs: set by capacity.auto.tfvars.json, which `npm run capacity -- --write` computes
# from docs/capacity.md's model. The gateway count, connection limit and autoscaling target are
# not inputs: ../../sizing.tf derives them with the same model (../../capacity.tf.json), and
# tests/plan.tftest.hcl checks that against tests/capacity.expected.json. No defaults: edit the
# model or its benchmark inputs and regenerate, rather than a number here.
################################################################################

variable "expected_agents" {
  description = "Agents connected at once (docs/capacity.md: 1,000,000)."
  type        = number
}

variable "records_per_agent_per_second" {
  description = "Events per agent per second the model sizes for (the simulator's steady scenario)."
  type        = number
}

variable "average_record_bytes" {
  description = "MQData record bytes to Kafka (key and framing included), from the model's event mix."
  type        = number
}

variable "gateway_cpu" {
  description = "CPU units per gateway task (the model's 1 vCPU process)."
  type        = number
}

variable "gateway_memory" {
  description = "Memory per gateway task in MiB (the model's 2 GiB process)."
  type        = number
}

variable "kafka_partitions" {
  description = "Partitions of the records topic: the model's MB/s over 10 MB/s per partition, at least 12."
  type        = number
}

variable "table_billing_mode" {
  description = "DynamoDB billing mode the model prices (on demand)."
  type        = string
}
