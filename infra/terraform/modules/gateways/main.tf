data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  create     = var.create
  is_fargate = var.launch_type == "FARGATE"

  grpc_port = 6751
  http_port = 6752
  data_dir  = "/var/lib/fleetgate"

  control_cidrs = length(var.control_api_cidr_blocks) > 0 ? var.control_api_cidr_blocks : [var.vpc_cidr_block]

  # `processes` gateway processes per task (FLEETGATE_PROCESSES, docs/architecture.md): process i
  # has the control API (and /metrics) on 6752 + i and its share of the task's connection limit.
  control_ports           = [for i in range(var.processes) : local.http_port + i]
  process_max_connections = ceil(var.max_connections / var.processes)

  # The environment of docs/environment.md. FLEETGATE_ADVERTISE_HOST is left to its default, the task's
  # own address (awsvpc: every task has its own ENI), which is what discovery hands to agents.
  environment = merge(
    {
      FLEETGATE_DATA_DIR          = local.data_dir
      FLEETGATE_PKI_DIR           = "${local.data_dir}/pki"
      FLEETGATE_IDENTITY          = var.identity
      FLEETGATE_MAX_CONNECTIONS   = tostring(local.process_max_connections)
      FLEETGATE_PROCESSES         = tostring(var.processes)
      FLEETGATE_WORKERS           = tostring(var.workers)
      FLEETGATE_KAFKA_TOPIC       = var.kafka_topic
      FLEETGATE_KAFKA_COMPRESSION = var.kafka_compression
      FLEETGATE_TABLE_PREFIX      = var.table_prefix
      FLEETGATE_LOG_LEVEL         = var.log_level
      AWS_REGION                  = data.aws_region.current.id
    },
    var.kafka_brokers != "" ? { FLEETGATE_KAFKA_BROKERS = var.kafka_brokers } : {},
    # MSK's TLS listener (9094); its certificates chain to Amazon Trust Services, which Node's
    # default CAs hold, so no FLEETGATE_KAFKA_CA_FILE is needed.
    var.kafka_tls ? { FLEETGATE_KAFKA_TLS = "1" } : {},
    # MSK's TLS client authentication: the certificate the start script writes (below).
    var.kafka_client_cert ? {
      FLEETGATE_KAFKA_CERT_FILE = "${local.data_dir}/pki/kafka-client.crt"
      FLEETGATE_KAFKA_KEY_FILE  = "${local.data_dir}/pki/kafka-client.key"
    } : {},
    # The discovery API's HTTPS URL: registrations are AK/SK-signed with FLEETGATE_AKSK (below).
    length(var.discovery_addrs) > 0 ? { FLEETGATE_SD_ADDRS = join(",", var.discovery_addrs) } : {},
    var.extra_environment,
  )

  # ECS hands secrets over as environment variables; the gateway reads its TLS files from
  # FLEETGATE_PKI_DIR, so the start command writes them (mode 0600, on the task's own storage)
  # and drops the variables before exec'ing node. With initProcessEnabled, ECS's init forwards
  # SIGTERM to node, which drains.
  start_script = <<-SH
    set -eu
    umask 077
    mkdir -p "$FLEETGATE_PKI_DIR"
    printf '%s\n' "$PKI_CA_CRT" > "$FLEETGATE_PKI_DIR/ca.crt"
    printf '%s\n' "$PKI_SERVER_CRT" > "$FLEETGATE_PKI_DIR/server.crt"
    printf '%s\n' "$PKI_SERVER_KEY" > "$FLEETGATE_PKI_DIR/server.key"
    if [ -n "$${PKI_CRL_PEM:-}" ]; then printf '%s\n' "$PKI_CRL_PEM" > "$FLEETGATE_PKI_DIR/crl.pem"; fi
    if [ -n "$${KAFKA_CLIENT_CRT:-}" ]; then
      printf '%s\n' "$KAFKA_CLIENT_CRT" > "$FLEETGATE_KAFKA_CERT_FILE"
      printf '%s\n' "$KAFKA_CLIENT_KEY" > "$FLEETGATE_KAFKA_KEY_FILE"
    fi
    unset PKI_CA_CRT PKI_SERVER_CRT PKI_SERVER_KEY PKI_CRL_PEM KAFKA_CLIENT_CRT KAFKA_CLIENT_KEY
    # The gateway's V8 flags (gateway/process/node-flags.ts).
    exec node --initial-old-space-size=128 bin/fleetgate.js gateway
  SH

  # Every JSON key named here must exist in the secret (ECS refuses to start the task otherwise):
  # crl_pem may be empty (docs/deploy.md, step 3); the Kafka client pair only with
  # kafka_client_cert.
  secrets = concat([
    { name = "PKI_CA_CRT", valueFrom = "${var.pki_secret_arn}:ca_crt::" },
    { name = "PKI_SERVER_CRT", valueFrom = "${var.pki_secret_arn}:server_crt::" },
    { name = "PKI_SERVER_KEY", valueFrom = "${var.pki_secret_arn}:server_key::" },
    { name = "PKI_CRL_PEM", valueFrom = "${var.pki_secret_arn}:crl_pem::" },
    { name = "FLEETGATE_AKSK", valueFrom = var.aksk_secret_arn },
    ], var.kafka_client_cert ? [
    { name = "KAFKA_CLIENT_CRT", valueFrom = "${var.pki_secret_arn}:kafka_client_crt::" },
    { name = "KAFKA_CLIENT_KEY", valueFrom = "${var.pki_secret_arn}:kafka_client_key::" },
  ] : [])

  # The Prometheus metrics the alarms, the dashboard and autoscaling use, published by the
  # CloudWatch agent sidecar as embedded metric format: one datapoint per gateway process and
  # scrape, with the dimensions ClusterName and ServiceName, so Average is "per gateway process"
  # (per gateway with one process a task, the default) and Maximum is "the worst gateway". Counters
  # arrive as deltas per scrape.
  metric_selectors = [
    "^elkeid_ac_grpc_conn_count$",
    "^fleetgate_spool_pending_records$",
    "^fleetgate_spool_bytes$",
    "^fleetgate_spool_full_waits$",
    "^fleetgate_spool_blocked$",
    "^fleetgate_ingest_spooling$",
    "^fleetgate_kafka_send_failures_total$",
    "^fleetgate_agent_refusals_total$",
    "^fleetgate_tls_handshake_failures_total$",
    "^fleetgate_tls_handshakes_pending$",
    "^fleetgate_connections_refused_total$",
    "^fleetgate_records_received_total$",
    "^fleetgate_nodejs_eventloop_lag_p99_seconds$",
  ]
  cloudwatch_agent_config = jsonencode({
    agent = { debug = false }
    logs = {
      force_flush_interval = 5
      metrics_collected = {
        prometheus = {
          log_group_name         = try(aws_cloudwatch_log_group.this["metrics"].name, "")
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          emf_processor = {
            metric_declaration_dedup = true
            metric_namespace         = var.metrics_namespace
            metric_declaration = [
              {
                source_labels    = ["job"]
                label_matcher    = "^fleetgate-gateway$"
                dimensions       = [["ClusterName", "ServiceName"]]
                metric_selectors = local.metric_selectors
              },
              {
                # Command deliveries by result (sent, not_connected, queue_full, timed_out, closed):
                # the dispatch failures the observability module alarms on.
                source_labels    = ["job"]
                label_matcher    = "^fleetgate-gateway$"
                dimensions       = [["ClusterName", "ServiceName", "result"]]
                metric_selectors = ["^fleetgate_commands_total$"]
              },
            ]
          }
        }
      }
    }
  })
  prometheus_config = yamlencode({
    global = { scrape_interval = "30s", scrape_timeout = "10s" }
    scrape_configs = [{
      job_name = "fleetgate-gateway"
      static_configs = [{
        targets = [for port in local.control_ports : "localhost:${port}"]
        labels  = { ClusterName = var.name, ServiceName = var.name }
      }]
    }]
  })

  container_definitions = [
    {
      name                   = "gateway"
      image                  = var.image
      essential              = true
      command                = ["sh", "-c", local.start_script]
      user                   = "1000:1000"
      readonlyRootFilesystem = true
      stopTimeout            = var.stop_timeout
      portMappings = [
        { name = "agents", containerPort = local.grpc_port, protocol = "tcp" },
        { name = "control", containerPort = local.http_port, protocol = "tcp" },
      ]
      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
      secrets     = local.secrets
      ulimits     = [{ name = "nofile", softLimit = var.nofile_limit, hardLimit = var.nofile_limit }]
      linuxParameters = {
        initProcessEnabled = true
      }
      mountPoints = [{ sourceVolume = "data", containerPath = local.data_dir, readOnly = false }]
      # Liveness only, and tolerant of load: /healthz is answered on the event loop the agents
      # share, which stalled for up to 22 s in the end-to-end runs at 2 events/s. A stalled but
      # working gateway must not be killed (its agents would pile onto the others): ECS replaces
      # the task only after 10 failed checks in a row, 30 s apart, each allowed 25 s (~5 minutes
      # without one answer). A crashed process is replaced at once (the container exits).
      healthCheck = {
        command     = ["CMD", "node", "-e", "fetch('http://127.0.0.1:${local.http_port}/healthz',{signal:AbortSignal.timeout(24000)}).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
        interval    = 30
        timeout     = 25
        retries     = 10
        startPeriod = 120
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = try(aws_cloudwatch_log_group.this["gateway"].name, "")
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "gateway"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    },
    {
      name      = "metrics"
      image     = var.cloudwatch_agent_image
      essential = false
      environment = [
        { name = "CW_CONFIG_CONTENT", value = local.cloudwatch_agent_config },
        { name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_config },
      ]
      dependsOn = [{ containerName = "gateway", condition = "START" }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = try(aws_cloudwatch_log_group.this["gateway"].name, "")
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "cloudwatch-agent"
        }
      }
    },
  ]
}

################################################################################
# Logs
################################################################################

# The containers' logs, and the sidecar's embedded-metric-format events (CloudWatch turns them
# into metrics).
locals {
  log_groups = {
    gateway = "/fleetgate/${var.name}/gateway"
    metrics = "/fleetgate/${var.name}/metrics"
  }
  # Built from the name, not read from the created group, so the task policy is known at plan
  # time and `terraform plan` shows what it grants.
  metrics_log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_groups.metrics}"
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.create ? local.log_groups : {}

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# Before, the two log groups were resources of their own.
moved {
  from = aws_cloudwatch_log_group.gateway[0]
  to   = aws_cloudwatch_log_group.this["gateway"]
}

moved {
  from = aws_cloudwatch_log_group.metrics[0]
  to   = aws_cloudwatch_log_group.this["metrics"]
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

# Execution role: what ECS itself needs to start a task (pull the image, write the log
# streams, read the two secrets).
resource "aws_iam_role" "execution" {
  count = local.create ? 1 : 0

  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  count = local.create ? 1 : 0

  role       = aws_iam_role.execution[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadGatewaySecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.pki_secret_arn, var.aksk_secret_arn]
  }
  statement {
    sid       = "DecryptGatewaySecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = local.create ? 1 : 0

  name   = "read-gateway-secrets"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# Task role: what the running containers may do. The gateway registers with discovery over HTTPS
# (no registry table) and produces to Kafka over TLS; with AWS_REGION set it opens the DynamoDB
# tables (gateway/process/role.ts, never creating them) for agent status, the connection
# limit, the configs pushed at first heartbeat and task results. The metrics sidecar writes its
# embedded-metric-format log events. DynamoDB is granted action by action, table by table and
# index by index, from what those modules send: test/integration/infra-terraform.test.ts holds
# the grants against the code.
resource "aws_iam_role" "task" {
  count = local.create ? 1 : 0

  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "task" {
  count = local.create ? 1 : 0

  statement {
    sid = "WriteMetricEvents"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      local.metrics_log_group_arn,
      "${local.metrics_log_group_arn}:log-stream:*",
    ]
  }

  # ingest/scale-in-protection.ts: while its spool holds records the gateway protects its own task
  # from scale-in and deployments, through the ECS agent (which calls ECS with this role).
  statement {
    sid = "SpoolScaleInProtection"
    actions = [
      "ecs:UpdateTaskProtection",
      "ecs:GetTaskProtection",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:task/${var.name}/*"]
  }

  # manager/agent-status-writer.ts: connect, disconnect and stale marks (conditional UpdateItem)
  # and the full agent items (BatchWriteItem, 25 a request).
  statement {
    sid = "AgentStatus"
    actions = [
      "dynamodb:UpdateItem",
      "dynamodb:BatchWriteItem",
    ]
    resources = [var.table_arns["agents"]]
  }

  # An agent's tags (byAgent): agent-status-writer.ts for the aggregates and MQData.Tag,
  # configs.ts createStoreConfigSource for the config pushed when the agent is identified.
  statement {
    sid       = "TagsByAgent"
    actions   = ["dynamodb:Query"]
    resources = [var.index_arns["tags"]["byAgent"]]
  }

  # A changed tag's members (Query by tag, agent-status-writer.ts via tag-watch.ts), so records
  # of connected agents carry new tags. The tags table is never written here.
  statement {
    sid       = "TagMembers"
    actions   = ["dynamodb:Query"]
    resources = [var.table_arns["tags"]]
  }

  # configs: the gateway's aggregate (fleet#gateway: PutItem every 30 s, DeleteItem at shutdown),
  # its desired limit (fleet#limit: GetItem), the agents counter (fleet#counter: UpdateItem ADD),
  # the tag revisions (fleet#tagcount: Query) and the config scopes merged for the config push
  # (Query; configs.ts).
  statement {
    sid = "Configs"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
    ]
    resources = [var.table_arns["configs"]]
  }

  # manager/tasks/results.ts (through result-sink.ts deliverDirect): the subtask of a result's
  # token (byToken), its state and result (conditional UpdateItem), then the chunk head's
  # dirty mark (UpdateItem ADD). The tasks table is not touched.
  statement {
    sid = "TaskResults"
    actions = [
      "dynamodb:UpdateItem",
    ]
    resources = [
      var.table_arns["subtasks"],
      var.table_arns["chunks"],
    ]
  }

  statement {
    sid       = "SubtaskByToken"
    actions   = ["dynamodb:Query"]
    resources = [var.index_arns["subtasks"]["byToken"]]
  }

  # manager/store/connection-history-store.ts: each connect and disconnect (BatchWriteItem).
  statement {
    sid       = "ConnectionHistory"
    actions   = ["dynamodb:BatchWriteItem"]
    resources = [var.table_arns["connections"]]
  }
}

resource "aws_iam_role_policy" "task" {
  count = local.create ? 1 : 0

  name   = "gateway"
  role   = aws_iam_role.task[0].id
  policy = data.aws_iam_policy_document.task[0].json
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "lb" {
  count = local.create ? 1 : 0

  name_prefix = "${var.name}-nlb-"
  description = "fleetgate gateway balancer: agents on 6751"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-nlb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_agents" {
  for_each = local.create ? toset(var.agent_cidr_blocks) : toset([])

  security_group_id = aws_security_group.lb[0].id
  description       = "Agents (mTLS gRPC)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.grpc_port
  to_port           = local.grpc_port
}

resource "aws_vpc_security_group_egress_rule" "lb_to_tasks" {
  for_each = local.create ? toset([tostring(local.grpc_port), tostring(local.http_port)]) : toset([])

  security_group_id            = aws_security_group.lb[0].id
  description                  = "To the gateways (agents and health checks)"
  referenced_security_group_id = aws_security_group.tasks[0].id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_security_group" "tasks" {
  count = local.create ? 1 : 0

  name_prefix = "${var.name}-tasks-"
  description = "fleetgate gateways: agents on 6751, control API on 6752"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_lb" {
  for_each = local.create ? toset([tostring(local.grpc_port), tostring(local.http_port)]) : toset([])

  security_group_id            = aws_security_group.tasks[0].id
  description                  = "From the balancer (agents and health checks)"
  referenced_security_group_id = aws_security_group.lb[0].id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

# Agents sent here by discovery dial the task's own address, and the balancer preserves the
# agent's address: both need the agents' CIDRs at the task.
resource "aws_vpc_security_group_ingress_rule" "tasks_agents" {
  for_each = local.create ? toset(var.agent_cidr_blocks) : toset([])

  security_group_id = aws_security_group.tasks[0].id
  description       = "Agents (mTLS gRPC)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.grpc_port
  to_port           = local.grpc_port
}

resource "aws_vpc_security_group_ingress_rule" "tasks_control" {
  for_each = local.create ? toset(local.control_cidrs) : toset([])

  security_group_id = aws_security_group.tasks[0].id
  description       = "Control API (AK/SK-signed) and /metrics, one port per gateway process"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.http_port
  to_port           = local.http_port + var.processes - 1
}

# Egress: Kafka, discovery, DynamoDB, Secrets Manager, ECR and CloudWatch. The AWS APIs are
# reached through the NAT gateways (or VPC endpoints you add), so HTTPS goes anywhere.
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.tasks[0].id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, CloudWatch Logs, DynamoDB, discovery API)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_vpc" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.tasks[0].id
  description       = "Kafka brokers and discovery nodes inside the VPC"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
}

################################################################################
# Network Load Balancer: TCP passthrough, so mutual TLS ends at the gateway
################################################################################

resource "aws_lb" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_91:A Network Load Balancer writes access logs for TLS listeners only; this one passes TCP through (mTLS ends at the gateway), so there is nothing to log. VPC flow logs (network module) record the flows.
  # checkov:skip=CKV2_AWS_28:WAF protects HTTP(S) balancers; this is a layer-4 TCP balancer carrying mutual TLS.
  name                             = substr("${var.name}-nlb", 0, 32)
  load_balancer_type               = "network"
  internal                         = var.load_balancer_internal
  subnets                          = var.load_balancer_subnet_ids
  security_groups                  = [aws_security_group.lb[0].id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = true

  tags = var.tags
}

resource "aws_lb_target_group" "agents" {
  count = local.create ? 1 : 0

  name_prefix          = "fgagt-"
  port                 = local.grpc_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay
  preserve_client_ip   = true
  # A deregistered gateway keeps its agents' streams until it has drained them itself.
  connection_termination = false

  # /readyz turns 503 while the gateway drains. Tolerant of load like the container's check:
  # ECS replaces tasks the balancer reports unhealthy, so a gateway whose event loop is busy
  # must pass; 10 failures 30 s apart, each allowed 25 s.
  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = tostring(local.http_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 30
    timeout             = 25
    healthy_threshold   = 2
    unhealthy_threshold = 10
  }

  # An unhealthy (draining, or stalled) gateway keeps the agents it has: the balancer only
  # stops sending it new ones.
  target_health_state {
    enable_unhealthy_connection_termination = false
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "agents" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_2:TCP passthrough on purpose: the agents' mutual TLS (client certificate, SAN elkeid.com) must end at the gateway.
  # checkov:skip=CKV_AWS_103:Same: TLS is negotiated by the gateway (TLS 1.2 minimum, AEAD suites only, 1.3 preferred), not by the balancer.
  load_balancer_arn = aws_lb.this[0].arn
  port              = local.grpc_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.agents[0].arn
  }

  tags = var.tags
}

################################################################################
# Cluster and capacity
################################################################################

resource "aws_ecs_cluster" "this" {
  count = local.create ? 1 : 0

  name = var.name

  setting {
    name  = "containerInsights"
    value = "enhanced"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  count = local.create ? 1 : 0

  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = local.is_fargate ? ["FARGATE"] : [aws_ecs_capacity_provider.ec2[0].name]

  default_capacity_provider_strategy {
    capacity_provider = local.is_fargate ? "FARGATE" : aws_ecs_capacity_provider.ec2[0].name
    weight            = 1
  }
}

# EC2 capacity (launch_type = EC2): ECS-optimized Amazon Linux 2023 hosts in an Auto Scaling
# group that ECS scales to fit the tasks. awsvpc tasks on EC2 need ENI trunking for density
# (account setting awsvpcTrunking, docs/deploy.md).
data "aws_ssm_parameter" "ecs_ami" {
  count = local.create && !local.is_fargate ? 1 : 0

  name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  name_prefix        = "${var.name}-host-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  role       = aws_iam_role.host[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  name_prefix = "${var.name}-host-"
  role        = aws_iam_role.host[0].name

  tags = var.tags
}

resource "aws_security_group" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  name_prefix = "${var.name}-host-"
  description = "fleetgate gateway hosts: no inbound; tasks have their own interfaces"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-host" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "host_https" {
  count = local.create && !local.is_fargate ? 1 : 0

  security_group_id = aws_security_group.host[0].id
  description       = "ECS agent, ECR and CloudWatch over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_launch_template" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  name_prefix            = "${var.name}-"
  image_id               = data.aws_ssm_parameter.ecs_ami[0].value
  instance_type          = var.ec2_instance_type
  vpc_security_group_ids = [aws_security_group.host[0].id]
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.host[0].arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.ec2_root_volume_gib
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  user_data = base64encode(<<-EOT
    #!/bin/bash
    cat >> /etc/ecs/ecs.config <<CONFIG
    ECS_CLUSTER=${var.name}
    ECS_ENABLE_CONTAINER_METADATA=true
    ECS_CONTAINER_STOP_TIMEOUT=${var.stop_timeout}s
    ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
    CONFIG
  EOT
  )

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-host" })
  }

  tags = var.tags
}

resource "aws_autoscaling_group" "host" {
  count = local.create && !local.is_fargate ? 1 : 0

  name_prefix           = "${var.name}-"
  min_size              = var.ec2_min_size
  max_size              = var.ec2_max_size
  vpc_zone_identifier   = var.private_subnet_ids
  protect_from_scale_in = true

  launch_template {
    id      = aws_launch_template.host[0].id
    version = "$Latest"
  }

  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_ecs_capacity_provider" "ec2" {
  count = local.create && !local.is_fargate ? 1 : 0

  name = "${var.name}-ec2"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.host[0].arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status          = "ENABLED"
      target_capacity = 100
    }
  }

  tags = var.tags
}

################################################################################
# Task definition and service
################################################################################

resource "aws_ecs_task_definition" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_336:The gateway container's root file system is read-only; the CloudWatch agent sidecar writes its own state under /opt and cannot run read-only.
  family                   = var.name
  requires_compatibilities = [var.launch_type]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution[0].arn
  task_role_arn            = aws_iam_role.task[0].arn
  container_definitions    = jsonencode(local.container_definitions)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "ephemeral_storage" {
    for_each = local.is_fargate ? [var.ephemeral_storage_gib] : []

    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  # The data directory (spool, TLS files) on the task's own storage: Fargate's ephemeral
  # storage, or the host's disk on EC2. It lives as long as the task (docs/deploy.md,
  # "Rolling gateways").
  volume {
    name = "data"
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  count = local.create ? 1 : 0

  name                   = var.name
  cluster                = aws_ecs_cluster.this[0].id
  task_definition        = aws_ecs_task_definition.this[0].arn
  desired_count          = var.desired_count
  enable_execute_command = false
  propagate_tags         = "SERVICE"
  # Long-lived agent streams make a task's first minutes busy (a wave of handshakes).
  health_check_grace_period_seconds = var.health_check_grace_seconds
  availability_zone_rebalancing     = "ENABLED"

  capacity_provider_strategy {
    capacity_provider = local.is_fargate ? "FARGATE" : aws_ecs_capacity_provider.ec2[0].name
    weight            = 1
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks[0].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.agents[0].arn
    container_name   = "gateway"
    container_port   = local.grpc_port
  }

  # Rolling: new gateways start (and pass /readyz) before old ones are stopped; an old one
  # drains on SIGTERM. A deployment whose tasks never get healthy is rolled back.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = var.deployment_maximum_percent

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # EC2: spread over zones first, then hosts (Fargate spreads over the subnets' zones itself).
  dynamic "ordered_placement_strategy" {
    for_each = local.is_fargate ? [] : ["attribute:ecs.availability-zone", "instanceId"]

    content {
      type  = "spread"
      field = ordered_placement_strategy.value
    }
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.agents, aws_ecs_cluster_capacity_providers.this]
}

################################################################################
# Autoscaling on connected agents per gateway, on CPU, and on event-loop delay
#
# Connections: not the balancer's ActiveFlowCount (agents that discovery points at a gateway dial
# its own address and never pass the balancer); the gateway's elkeid_ac_grpc_conn_count
# (published by the sidecar) counts both. CPU: a gateway's transport is one event loop, so at
# high event rates CPU binds before connections (docs/capacity.md). Event-loop delay: what the
# agents feel (late acks, late commands) when a gateway is overloaded, whatever the cause.
# Target tracking scales out on whichever asks for more gateways, and in only when all agree.
################################################################################

resource "aws_appautoscaling_target" "this" {
  count = local.create ? 1 : 0

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this[0].name}/${aws_ecs_service.this[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count

  tags = var.tags
}

resource "aws_appautoscaling_policy" "connections" {
  count = local.create ? 1 : 0

  name               = "${var.name}-connections-per-gateway"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    # The metric's Average is per gateway process (one datapoint each): the task's target, shared.
    target_value = ceil(var.target_connections_per_gateway / var.processes)
    # Scaling in drains a gateway and moves its agents: do it rarely.
    scale_in_cooldown  = 900
    scale_out_cooldown = 120

    customized_metric_specification {
      namespace   = var.metrics_namespace
      metric_name = "elkeid_ac_grpc_conn_count"
      statistic   = "Average"

      dimensions {
        name  = "ClusterName"
        value = var.name
      }
      dimensions {
        name  = "ServiceName"
        value = var.name
      }
    }
  }
}

resource "aws_appautoscaling_policy" "cpu" {
  count = local.create ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.target_cpu_percent
    scale_in_cooldown  = 900
    scale_out_cooldown = 120

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Event-loop delay: a step policy on an alarm over the worst gateway's p99, adding a tenth of
# the service (at least one gateway) per step; it never scales in (the other two policies do).
resource "aws_appautoscaling_policy" "event_loop_lag" {
  count = local.create ? 1 : 0

  name               = "${var.name}-event-loop-lag"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type          = "PercentChangeInCapacity"
    min_adjustment_magnitude = 1
    cooldown                 = 300
    metric_aggregation_type  = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 10
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "event_loop_lag_scale_out" {
  count = local.create ? 1 : 0

  alarm_name          = "${var.name}-event-loop-lag-scale-out"
  alarm_description   = "The worst gateway's event-loop delay p99 above ${var.scale_out_event_loop_lag_ms} ms for 3 minutes: add gateways."
  namespace           = var.metrics_namespace
  metric_name         = "fleetgate_nodejs_eventloop_lag_p99_seconds"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.scale_out_event_loop_lag_ms / 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.event_loop_lag[0].arn]

  dimensions = {
    ClusterName = var.name
    ServiceName = var.name
  }

  tags = var.tags
}
