output "alarm_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies."
  value       = try(aws_sns_topic.alarms[0].arn, "")
}

output "kafka_log_group_name" {
  description = "Log group of the MSK broker logs."
  value       = try(aws_cloudwatch_log_group.kafka[0].name, "")
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = try(aws_cloudwatch_dashboard.this[0].dashboard_name, "")
}

output "alarm_names" {
  description = "Names of the alarms."
  value = compact([
    try(aws_cloudwatch_metric_alarm.spool_pending[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.spool_full[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.kafka_send_failures[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.connections_low[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.connections_near_limit[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.dispatch_failures[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.unhealthy_gateways[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.discovery_errors[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.discovery_throttles[0].alarm_name, ""),
    try(aws_cloudwatch_metric_alarm.discovery_5xx[0].alarm_name, ""),
  ])
}
