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
