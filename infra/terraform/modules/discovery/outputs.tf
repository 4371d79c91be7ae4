output "function_name" {
  description = "Name of the discovery function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the discovery function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = module.function.role_arn
}

output "api_endpoint" {
  description = "HTTPS base URL of the discovery API ($default stage), e.g. <endpoint>/registry/detail?name=hids_svr_grpc&count=10; the gateways' FLEETGATE_SD_ADDRS."
  value       = module.function.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API (the ApiId dimension of its CloudWatch metrics)."
  value       = module.function.api_id
}

output "log_group_name" {
  description = "Log group of the function."
  value       = module.function.log_group_name
}

output "http_address" {
  description = "host:8088 of the plain-HTTP discovery balancer: the agents' serviceDiscoveryHost (empty when not created)."
  value       = module.balancer.dns_name == "" ? "" : format("%s:%d", module.balancer.dns_name, local.http_port)
}

output "http_load_balancer_arn_suffix" {
  description = "ARN suffix of the 8088 balancer (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = module.balancer.arn_suffix
}
