################################################################################
# A load fleet: `fleetgate sim` processes on ECS Fargate, simulating `agents` Elkeid agents
# against a fleetgate deployment, each task uploading its report to S3 for `fleetgate sim merge`
# (as FleetDM runs osquery-perf for osquery). README.md beside this file has the whole run.
#
# Sizing from the measured simulator cost (simulator.tf.json, written by `npm run capacity --
# --write` from the end-to-end runs in loadtest/results): one simulator process per vCPU, each
# holding as many agents as keep its core at the capacity model's CPU target at this event rate.
################################################################################

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  model = local.simulator_model
  rate  = var.events_per_agent_per_second

  # The simulator's CPU per agent-second at this rate: the cheapest measured run at this rate or
  # above; above every run, the highest one scaled by the rate.
  at_or_above = [for r in local.model.runs : r if r.rate >= local.rate]
  highest     = [for r in local.model.runs : r if r.rate == max([for x in local.model.runs : x.rate]...)][0]
  us_per_agent_s = (length(local.at_or_above) > 0
    ? [for r in local.at_or_above : r.us_per_agent_s if r.rate == min([for x in local.at_or_above : x.rate]...)][0]
  : local.highest.us_per_agent_s * local.rate / local.highest.rate)

  processes_per_task = max(1, floor(var.task_cpu / 1024))
  agents_per_process = floor(local.model.cpu_target * 1000000 / local.us_per_agent_s)
  tasks              = ceil(var.agents / (local.agents_per_process * local.processes_per_task))
  agents_per_task    = ceil(var.agents / local.tasks)

  run_dir = "/run-sim"
  tags    = merge(var.tags, { "fleetgate:load-fleet" = var.name })

  sim_script = <<-SH
    set -eu
    umask 077
    mkdir -p ${local.run_dir}/pki
    printf '%s\n' "$PKI_CA_CRT" > ${local.run_dir}/pki/ca.crt
    printf '%s\n' "$PKI_CLIENT_CRT" > ${local.run_dir}/pki/client.crt
    printf '%s\n' "$PKI_CLIENT_KEY" > ${local.run_dir}/pki/client.key
    unset PKI_CA_CRT PKI_CLIENT_CRT PKI_CLIENT_KEY
    set -- --agents "$SIM_AGENTS" --processes "$SIM_PROCESSES" --scenario "$SIM_SCENARIO" --rate "$SIM_RATE" --duration "$SIM_DURATION" --pki ${local.run_dir}/pki --gateway "$SIM_GATEWAY" --json ${local.run_dir}/report.json
    if [ -n "$${SIM_SD:-}" ]; then set -- "$@" --sd "$SIM_SD"; fi
    if [ -n "$${SIM_DISRUPT_AT_TIME:-}" ]; then set -- "$@" --disrupt-at-time "$SIM_DISRUPT_AT_TIME"; fi
    exec node bin/fleetgate.js sim "$@"
  SH

  # Once the simulator has ended (whatever its exit), its report goes to
  # s3://<bucket>/<RUN_ID>/<task>.json; the task ends with this container.
  upload_script = <<-SH
    set -eu
    test -s ${local.run_dir}/report.json || { echo "no report: the simulator failed before writing one" >&2; exit 1; }
    aws s3 cp --only-show-errors ${local.run_dir}/report.json "s3://${aws_s3_bucket.reports.bucket}/$RUN_ID/$(hostname).json"
  SH

  container_definitions = [
    {
      name      = "sim"
      image     = var.sim_image
      essential = false
      command   = ["sh", "-c", local.sim_script]
      user      = "1000:1000"
      environment = [
        { name = "SIM_AGENTS", value = tostring(local.agents_per_task) },
        { name = "SIM_PROCESSES", value = tostring(local.processes_per_task) },
        { name = "SIM_SCENARIO", value = var.scenario },
        { name = "SIM_RATE", value = tostring(var.events_per_agent_per_second) },
        { name = "SIM_DURATION", value = tostring(var.duration_seconds) },
        { name = "SIM_SD", value = var.discovery_url },
        { name = "SIM_GATEWAY", value = var.gateway_address },
        # Given per run (README.md): a moment every task disrupts at together.
        { name = "SIM_DISRUPT_AT_TIME", value = "" },
      ]
      secrets = [
        { name = "PKI_CA_CRT", valueFrom = "${var.pki_secret_arn}:ca_crt::" },
        { name = "PKI_CLIENT_CRT", valueFrom = "${var.pki_secret_arn}:client_crt::" },
        { name = "PKI_CLIENT_KEY", valueFrom = "${var.pki_secret_arn}:client_key::" },
      ]
      # One socket per agent, and ports enough to hold them towards one balancer address.
      ulimits                = [{ name = "nofile", softLimit = 1048576, hardLimit = 1048576 }]
      systemControls         = [{ namespace = "net.ipv4.ip_local_port_range", value = "1024 65535" }]
      mountPoints            = [{ sourceVolume = "run", containerPath = local.run_dir, readOnly = false }]
      readonlyRootFilesystem = true
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "sim"
        }
      }
    },
    {
      name                   = "upload"
      image                  = var.aws_cli_image
      essential              = true
      entryPoint             = ["sh", "-c"]
      command                = [local.upload_script]
      readonlyRootFilesystem = true
      environment            = [{ name = "RUN_ID", value = "unnamed" }]
      dependsOn              = [{ containerName = "sim", condition = "COMPLETE" }]
      mountPoints            = [{ sourceVolume = "run", containerPath = local.run_dir, readOnly = true }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "upload"
        }
      }
    },
  ]
}

################################################################################
# Reports: one object per task, under the run's id
################################################################################

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:A key policy's resource "*" means this key; the account root statement lets IAM policies grant it (AWS's default key policy).
  # checkov:skip=CKV_AWS_111:Same: key policies can only name "*" as resource.
  # checkov:skip=CKV_AWS_356:Same: key policies can only name "*" as resource.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.id}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "fleetgate load fleet ${var.name}: reports and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.kms.json

  tags = local.tags
}

resource "aws_s3_bucket" "reports" {
  # checkov:skip=CKV_AWS_18:Reports of test runs, written only by this fleet's task role: access logs would need a second bucket for a handful of writes.
  # checkov:skip=CKV_AWS_144:Test reports: a copy in another region is not worth its cost.
  # checkov:skip=CKV2_AWS_62:Nobody needs to be notified of a report: `fleetgate sim merge` reads them after the run.
  bucket_prefix = "${var.name}-reports-"
  force_destroy = true

  tags = local.tags
}

resource "aws_s3_bucket_public_access_block" "reports" {
  bucket                  = aws_s3_bucket.reports.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "reports" {
  bucket = aws_s3_bucket.reports.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "reports" {
  bucket = aws_s3_bucket.reports.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "reports" {
  bucket = aws_s3_bucket.reports.id
  rule {
    id     = "expire-reports"
    status = "Enabled"
    filter {}
    expiration {
      days = var.report_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/fleetgate/${var.name}"
  retention_in_days = var.report_retention_days < 365 ? 365 : var.report_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = local.tags
}

################################################################################
# IAM
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadAgentPki"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.pki_secret_arn]
  }
  statement {
    sid       = "DecryptAgentPki"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-agent-pki"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# The upload sidecar writes its report, nothing else.
data "aws_iam_policy_document" "task" {
  statement {
    sid       = "WriteReports"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.reports.arn}/*"]
  }
  statement {
    sid       = "EncryptReports"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "write-reports"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

################################################################################
# Cluster, task definition, security group (run with `aws ecs run-task`: README.md)
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

resource "aws_ecs_task_definition" "sim" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.container_definitions)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "run"
  }

  tags = local.tags
}

resource "aws_security_group" "sim" {
  # checkov:skip=CKV2_AWS_5:Attached to the tasks by `aws ecs run-task` (the run_command output), which Terraform does not manage.
  name_prefix = "${var.name}-"
  description = "fleetgate load fleet: no inbound; out to the gateways, discovery and AWS APIs"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "sim" {
  for_each = toset(["443", "6751", "8088"])

  security_group_id = aws_security_group.sim.id
  description       = "Gateways (6751), discovery (8088), AWS APIs (443)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
}
