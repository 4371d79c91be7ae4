output "sizing" {
  description = "Simulator processes and tasks for `agents` at this event rate, from the measured simulator cost (simulator.tf.json)."
  value = {
    agents             = var.agents
    us_per_agent_s     = floor(local.us_per_agent_s * 10) / 10
    agents_per_process = local.agents_per_process
    processes_per_task = local.processes_per_task
    agents_per_task    = local.agents_per_task
    tasks              = local.tasks
    vcpus              = local.tasks * local.processes_per_task
  }
}

output "reports_bucket" {
  description = "Bucket of the reports: s3://<bucket>/<RUN_ID>/<task>.json."
  value       = aws_s3_bucket.reports.bucket
}

output "run_command" {
  description = "Starts every task of one run (RUN_ID and DISRUPT_AT set in the shell first; README.md)."
  value       = <<-SH
    for i in $(seq 1 ${local.tasks}); do echo $i; done | xargs -n 10 sh -c 'aws ecs run-task --region ${data.aws_region.current.id} --cluster ${aws_ecs_cluster.this.name} --task-definition ${aws_ecs_task_definition.sim.arn} --launch-type FARGATE --count $# --network-configuration "awsvpcConfiguration={subnets=[${join(",", var.subnet_ids)}],securityGroups=[${aws_security_group.sim.id}],assignPublicIp=DISABLED}" --overrides "{\"containerOverrides\":[{\"name\":\"sim\",\"environment\":[{\"name\":\"SIM_DISRUPT_AT_TIME\",\"value\":\"$DISRUPT_AT\"}]},{\"name\":\"upload\",\"environment\":[{\"name\":\"RUN_ID\",\"value\":\"$RUN_ID\"}]}]}" >/dev/null' sh
  SH
}

output "merge_command" {
  description = "Fetches and merges one run's reports (from the repository's root, after npm run build)."
  value       = "aws s3 cp --recursive s3://${aws_s3_bucket.reports.bucket}/$RUN_ID/ reports/$RUN_ID/ && npx fleetgate sim merge reports/$RUN_ID/*.json --json reports/$RUN_ID/merged.json"
}
