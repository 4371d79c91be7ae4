variable "create" {
  description = "Whether to create the alarms, the dashboard and the shared log groups."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of the alarms, the dashboard, the topic and the log groups."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key of the log groups and the alarm topic."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the log groups created here (broker logs)."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the gateways' metrics (gateways module output)."
  type        = string
  default     = "Fleetgate"
}

variable "gateway_dimensions" {
  description = "Dimensions of the gateways' metrics (gateways module output metric_dimensions)."
  type        = map(string)
}

variable "gateway_max_connections" {
  description = "Connection limit of one gateway task: the per-gateway alarm fires when the busiest gateway process passes connection_limit_ratio of its share (gateway_processes)."
  type        = number
}

variable "gateway_processes" {
  description = "Gateway processes per task (FLEETGATE_PROCESSES): the gateways' metrics have a datapoint per process, so the per-gateway connection figures are divided (near-limit alarm) or multiplied (agents connected) by it."
  type        = number
  default     = 1

  validation {
    condition     = var.gateway_processes >= 1 && var.gateway_processes == floor(var.gateway_processes)
    error_message = "gateway_processes is an integer >= 1."
  }
}

variable "connection_limit_ratio" {
  description = "Share of max_connections at which the busiest gateway raises the near-limit alarm."
  type        = number
  default     = 0.9
}

variable "expected_agents" {
  description = "Agents normally connected: the fleet-wide alarm fires when fewer than min_connected_ratio of them are connected."
  type        = number
}

variable "min_connected_ratio" {
  description = "Share of expected_agents below which the fleet counts as disconnected."
  type        = number
  default     = 0.8
}

variable "spool_pending_threshold" {
  description = "Records waiting in any gateway's spool for spool_alarm_minutes in a row that raise the alarm (the spool fills while Kafka does not take records; it is replayed in order once Kafka is back)."
  type        = number
  default     = 0
}

variable "spool_alarm_minutes" {
  description = "Minutes the spool must stay above the threshold before the alarm fires (short Kafka hiccups spool for seconds)."
  type        = number
  default     = 5
}

variable "dispatch_failure_threshold" {
  description = "Command deliveries per 5 minutes that failed at the gateways (queue_full, timed_out, closed) that raise the alarm."
  type        = number
  default     = 100
}

variable "dispatcher_failure_threshold" {
  description = "Failed command batches and failed passes of the task dispatcher per 5 minutes that raise the alarm."
  type        = number
  default     = 10
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix of the gateways' Network Load Balancer."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the agents' target group."
  type        = string
}

variable "discovery_function_name" {
  description = "Name of the discovery function."
  type        = string
}

variable "discovery_api_id" {
  description = "ID of the discovery HTTP API."
  type        = string
}

variable "manager_function_name" {
  description = "Name of the manager API function (empty: no manager alarms)."
  type        = string
  default     = ""
}

variable "dispatcher_function_name" {
  description = "Name of the task dispatcher function (empty: no dispatcher alarms)."
  type        = string
  default     = ""
}

variable "dispatcher_log_group_name" {
  description = "Log group of the task dispatcher, where the dispatch-failure metric filter reads."
  type        = string
  default     = ""
}

variable "kafka_cluster_name" {
  description = "Name of the MSK cluster (empty: no Kafka alarms)."
  type        = string
  default     = ""
}

variable "kafka_broker_count" {
  description = "Brokers of the MSK cluster (one disk alarm each)."
  type        = number
  default     = 0
}

variable "event_loop_lag_alarm_ms" {
  description = "Alarm when the worst gateway's event-loop delay p99 stays above this many milliseconds for three minutes."
  type        = number
  default     = 1000
}

variable "table_names" {
  description = "DynamoDB table name per table key: each gets read and write throttle alarms."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
