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
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name],
    aws_cloudwatch_metric_alarm.connections_low[*].alarm_name,
    aws_cloudwatch_metric_alarm.dispatch_failures[*].alarm_name,
    aws_cloudwatch_metric_alarm.kafka_disk[*].alarm_name,
  )
}
