output "api_endpoint" {
  description = "Base URL of the manager API: its balancer (internal unless access = \"public\"); https:// with a certificate."
  value       = module.balancer.dns_name == "" ? "" : "${local.https ? "https" : "http"}://${module.balancer.dns_name}"
}

output "load_balancer_arn_suffix" {
  description = "ARN suffix of the API's balancer (its CloudWatch dimension)."
  value       = module.balancer.arn_suffix
}

output "function_name" {
  description = "Name of the manager API function."
  value       = module.api.function_name
}

output "dispatcher_function_name" {
  description = "Name of the dispatcher function."
  value       = module.dispatcher.function_name
}

output "dispatcher_log_group_name" {
  description = "Log group of the dispatcher (the dispatch-failure metric filter reads it)."
  value       = module.dispatcher.log_group_name
}

output "log_group_name" {
  description = "Log group of the manager API function."
  value       = module.api.log_group_name
}

output "schedule_rule_name" {
  description = "EventBridge rule that runs the dispatcher."
  value       = try(aws_cloudwatch_event_rule.dispatcher[0].name, "")
}
