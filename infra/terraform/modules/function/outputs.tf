output "function_name" {
  description = "Name of the function."
  value       = try(aws_lambda_function.this[0].function_name, "")
}

output "function_arn" {
  description = "ARN of the function."
  value       = try(aws_lambda_function.this[0].arn, "")
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = try(aws_iam_role.this[0].arn, "")
}

output "security_group_id" {
  description = "Security group of the function's network interfaces."
  value       = try(aws_security_group.this[0].id, "")
}

output "log_group_name" {
  description = "Log group of the function."
  value       = try(aws_cloudwatch_log_group.this["function"].name, "")
}

output "api_endpoint" {
  description = "HTTPS base URL of the HTTP API ($default stage), when created."
  value       = try(aws_apigatewayv2_api.this[0].api_endpoint, "")
}

output "api_id" {
  description = "ID of the HTTP API (the ApiId dimension of its CloudWatch metrics), when created."
  value       = try(aws_apigatewayv2_api.this[0].id, "")
}
