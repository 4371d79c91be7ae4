variable "create" {
  description = "Whether to create the balancer and everything with it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the balancer (cut to 32 characters)."
  type        = string
}

variable "security_group_name" {
  description = "Name of the balancer's security group (its name prefix is this plus \"-\"); default: name."
  type        = string
  default     = null
}

variable "function_name" {
  description = "Name of the Lambda function the balancer invokes."
  type        = string
}

variable "function_arn" {
  description = "ARN of the Lambda function the balancer invokes (the target group's target)."
  type        = string
}

variable "permission_statement_id" {
  description = "Statement ID of the Lambda permission that lets the target group invoke the function."
  type        = string
}

variable "target_group_name_prefix" {
  description = "Name prefix of the target group (at most 6 characters)."
  type        = string

  validation {
    condition     = length(var.target_group_name_prefix) <= 6
    error_message = "A target group's name_prefix is at most 6 characters."
  }
}

variable "security_group_description" {
  description = "Description of the balancer's security group (who connects, on which port)."
  type        = string
}

variable "ingress_description" {
  description = "Description of each ingress rule of the allowlist."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the balancer's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the balancer (private ones for an internal balancer, public ones otherwise)."
  type        = list(string)
}

variable "internal" {
  description = "Whether the balancer is internal (reachable only from inside the VPC and connected networks)."
  type        = bool
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to connect to the listener's port."
  type        = list(string)
}

variable "port" {
  description = "Port of the listener."
  type        = number
}

variable "certificate_arn" {
  description = "ACM certificate of an HTTPS listener; empty for plain HTTP."
  type        = string
  default     = ""
}

variable "idle_timeout" {
  description = "Seconds the balancer keeps an idle connection open."
  type        = number
  default     = 60
}

variable "health_check_path" {
  description = "Path of the target group's health check (the function answers it)."
  type        = string
  default     = "/ping"
}

variable "forward_paths" {
  description = "Only these paths reach the function (the listener answers 404 to the rest); empty: every request is forwarded."
  type        = list(string)
  default     = []
}

variable "forward_methods" {
  description = "With forward_paths: the HTTP methods forwarded on them."
  type        = list(string)
  default     = ["GET"]
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
