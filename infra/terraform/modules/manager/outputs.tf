output "api_endpoint" {
  description = "HTTPS base URL of the manager API ($default stage)."
  value       = module.api.api_endpoint
}

output "api_id" {
  description = "ID of the manager's HTTP API (the ApiId dimension of its CloudWatch metrics)."
  value       = module.api.api_id
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
