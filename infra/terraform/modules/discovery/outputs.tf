output "function_name" {
  description = "Name of the discovery function."
  value       = try(aws_lambda_function.this[0].function_name, "")
}

output "function_arn" {
  description = "ARN of the discovery function."
  value       = try(aws_lambda_function.this[0].arn, "")
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = try(aws_iam_role.function[0].arn, "")
}

output "api_endpoint" {
  description = "HTTPS base URL of the discovery API ($default stage), e.g. <endpoint>/registry/detail?name=hids_svr_grpc&count=10."
  value       = try(aws_apigatewayv2_api.this[0].api_endpoint, "")
}

output "api_id" {
  description = "ID of the HTTP API (the ApiId dimension of its CloudWatch metrics)."
  value       = try(aws_apigatewayv2_api.this[0].id, "")
}

output "log_group_name" {
  description = "Log group of the function."
  value       = try(aws_cloudwatch_log_group.function[0].name, "")
}
