output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = try(aws_ecs_cluster.this[0].name, "")
}

output "service_name" {
  description = "Name of the ECS service of the gateways."
  value       = try(aws_ecs_service.this[0].name, "")
}

output "load_balancer_dns_name" {
  description = "DNS name of the Network Load Balancer; point the agents' address (a CNAME of yours) at it, port 6751."
  value       = try(aws_lb.this[0].dns_name, "")
}

output "load_balancer_arn_suffix" {
  description = "ARN suffix of the balancer (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = try(aws_lb.this[0].arn_suffix, "")
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the agents' target group (the TargetGroup dimension of its CloudWatch metrics)."
  value       = try(aws_lb_target_group.agents[0].arn_suffix, "")
}

output "task_security_group_id" {
  description = "Security group of the gateway tasks (the brokers admit it)."
  value       = try(aws_security_group.tasks[0].id, "")
}

output "task_role_arn" {
  description = "ARN of the gateway tasks' role."
  value       = try(aws_iam_role.task[0].arn, "")
}

output "log_group_name" {
  description = "Log group of the gateways and their metrics sidecar."
  value       = try(aws_cloudwatch_log_group.this["gateway"].name, "")
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the gateways' metrics."
  value       = var.metrics_namespace
}

output "metric_dimensions" {
  description = "Dimensions (name => value) of the gateways' metrics in CloudWatch."
  value = {
    ClusterName = var.name
    ServiceName = var.name
  }
}
