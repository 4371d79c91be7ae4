variable "create" {
  description = "Whether to create the network (set false to bring your own VPC and pass its IDs to the other modules)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of every resource of this module."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR of the VPC. It is split into one public and one private subnet per availability zone."
  type        = string
  default     = "10.60.0.0/16"
}

variable "azs" {
  description = "Availability zones to spread the subnets over (at least two; three lets the fleet survive the loss of one zone with headroom, see infra/terraform/README.md)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "private_subnet_newbits" {
  description = "Bits added to the VPC prefix for each private subnet (default /16 + 4 = /20, 4,091 addresses per zone: one per gateway task, broker and Lambda ENI)."
  type        = number
  default     = 4
}

variable "public_subnet_newbits" {
  description = "Bits added to the VPC prefix for each public subnet (default /16 + 8 = /24). Public subnets hold only the NAT gateways and the internet-facing load balancer."
  type        = number
  default     = 8
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every zone (cheaper, but a zone failure cuts the others' egress) instead of one per zone."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Days to keep VPC flow logs in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the flow log group."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "interface_endpoints" {
  description = "AWS services reached through VPC interface endpoints (private DNS on) from the private subnets. secretsmanager: the Lambda functions read their secrets at cold start without a route out of the VPC."
  type        = list(string)
  default     = ["secretsmanager"]
}
