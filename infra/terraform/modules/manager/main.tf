################################################################################
# The manager: its API (manager/lambda.ts) behind an API Gateway HTTP API, and the task
# dispatcher (manager/dispatcher-lambda.ts) on an EventBridge schedule
#
# Both read FLEETGATE_AKSK from the <name>/aksk secret at cold start (the gateways' callbacks are
# signed with it, and so are the dispatcher's command batches to the gateways' control API);
# the API also reads FLEETGATE_MANAGER_SECRET (token signing) from the <name>/manager secret.
# Neither value is in the functions' configuration or in the state.
#
# IAM grants DynamoDB action by action, table by table (and index by index), from what the
# modules of each bundle send; test/integration/infra-terraform.test.ts holds the grants against
# the bundles built by scripts/build-lambda.mjs.
################################################################################

locals {
  create = var.create

  aksk = { FLEETGATE_AKSK_SECRET_ARN = var.aksk_secret_arn }
}

################################################################################
# IAM: the API
################################################################################

data "aws_iam_policy_document" "api" {
  # users.ts: sign-in (Get), password and lock updates, listing, creation, removal.
  statement {
    sid = "Users"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Scan",
    ]
    resources = [var.table_arns["users"]]
  }

  # apikeys.ts: verification (Get), creation, last use and revocation (Update), listing.
  statement {
    sid = "ApiKeys"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Scan",
    ]
    resources = [var.table_arns["apikeys"]]
  }

  # audit.ts: one item per change, queried by day.
  statement {
    sid = "Audit"
    actions = [
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [var.table_arns["audit"]]
  }

  # agents.ts: one agent, the list (Scan); task targets resolved in batches.
  statement {
    sid = "AgentsRead"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Scan",
    ]
    resources = [var.table_arns["agents"]]
  }

  # tags.ts and configs.ts: tags per agent (byAgent) and agents per tag, written in batches.
  statement {
    sid = "Tags"
    actions = [
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:BatchWriteItem",
    ]
    resources = [var.table_arns["tags"]]
  }

  statement {
    sid       = "TagsByAgent"
    actions   = ["dynamodb:Query"]
    resources = [var.index_arns["tags"]["byAgent"]]
  }

  # configs.ts, tags.ts, routes/fleet.ts, store/fleet-items.ts: plugin configs, tag counters,
  # the gateways' limits and status items; tasks/config-plan.ts reads the config scopes and
  # writes config tasks' items into agent#<id> scopes.
  statement {
    sid = "Configs"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:Query",
      "dynamodb:Scan",
    ]
    resources = [var.table_arns["configs"]]
  }

  # The gateways known to discovery (registry-store.ts `list`: one Query per service name).
  statement {
    sid       = "RegistryRead"
    actions   = ["dynamodb:Query"]
    resources = [var.registry_table_arn]
  }

  # tasks/: creation (Put, idempotency Get), listing (byTime, byActive), state (Update),
  # subtasks and chunks written in batches and read back per task or per token.
  statement {
    sid = "Tasks"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
      "dynamodb:BatchWriteItem",
    ]
    resources = [
      var.table_arns["tasks"],
      var.table_arns["subtasks"],
      var.table_arns["chunks"],
    ]
  }

  # tasks/service.ts lists tasks by time; tasks/results.ts finds a subtask by its token;
  # store/agent-tasks-store.ts reads an agent's recent tasks (byAgent).
  statement {
    sid     = "TaskIndexes"
    actions = ["dynamodb:Query"]
    resources = [
      var.index_arns["tasks"]["byTime"],
      var.index_arns["subtasks"]["byToken"],
      var.index_arns["subtasks"]["byAgent"],
    ]
  }

  # store/connection-history-store.ts: an agent's connects and disconnects (Query by agentId;
  # the gateways write them).
  statement {
    sid       = "ConnectionHistory"
    actions   = ["dynamodb:Query"]
    resources = [var.table_arns["connections"]]
  }
}

################################################################################
# IAM: the dispatcher
################################################################################

data "aws_iam_policy_document" "dispatcher" {
  # tasks/dispatcher.ts, lease.ts, context.ts: the active tasks (byActive), their chunks under
  # leases (conditional Updates), subtasks read in batches and written back in batches.
  statement {
    sid = "Tasks"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
      "dynamodb:BatchWriteItem",
    ]
    resources = [
      var.table_arns["tasks"],
      var.table_arns["subtasks"],
      var.table_arns["chunks"],
    ]
  }

  statement {
    sid       = "ActiveTasks"
    actions   = ["dynamodb:Query"]
    resources = [var.index_arns["tasks"]["byActive"]]
  }

  # Where each agent is connected (its gateway's control address, on the agent item), its tags
  # and the configs to merge (tasks/config-plan.ts).
  statement {
    sid = "FleetRead"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
    ]
    resources = [
      var.table_arns["agents"],
      var.table_arns["tags"],
      var.table_arns["configs"],
    ]
  }

  # tasks/config-plan.ts: a config task writes its items into its agents' agent#<id> scopes
  # before it sends (write-ahead, as Elkeid writes the merged config back), 25 a request.
  statement {
    sid       = "ConfigWrites"
    actions   = ["dynamodb:BatchWriteItem"]
    resources = [var.table_arns["configs"]]
  }

  statement {
    sid       = "TagsByAgent"
    actions   = ["dynamodb:Query"]
    resources = [var.index_arns["tags"]["byAgent"]]
  }
}

################################################################################
# Functions
################################################################################

locals {
  public    = var.access == "public"
  https     = var.certificate_arn != ""
  api_port  = local.https ? 443 : 80
  api_cidrs = length(var.allowed_cidr_blocks) > 0 ? var.allowed_cidr_blocks : [var.vpc_cidr_block]
}

module "api" {
  source = "../function"

  create               = local.create
  name                 = var.name
  description          = "fleetgate manager API (Elkeid Manager API v1 and fleetgate's v6 routes)"
  package_path         = var.package_path
  handler              = var.handler
  runtime              = var.runtime
  architecture         = var.architecture
  memory_size          = var.memory_size
  timeout              = var.timeout
  reserved_concurrency = var.reserved_concurrency
  policy_json          = data.aws_iam_policy_document.api.json
  secrets              = merge(local.aksk, { FLEETGATE_MANAGER_SECRET_ARN = var.manager_secret_arn })
  table_prefix         = var.table_prefix
  log_level            = var.log_level
  vpc_id               = var.vpc_id
  vpc_cidr_block       = var.vpc_cidr_block
  # 443: Secrets Manager endpoint; the gateways' control API (tasks/service.ts sends commands).
  vpc_egress_ports = [443, var.gateway_control_port]
  subnet_ids       = var.subnet_ids

  # Reached through the balancer below (private by default), not an API Gateway endpoint: an HTTP
  # API is always public and cannot be limited to addresses.
  create_http_api = false

  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn

  tags = var.tags
}

module "dispatcher" {
  source = "../function"

  create       = local.create
  name         = "${var.name}-dispatcher"
  description  = "fleetgate task dispatcher: delivers task commands to the gateways, on a schedule"
  package_path = var.dispatcher_package_path
  handler      = var.dispatcher_handler
  runtime      = var.runtime
  architecture = var.architecture
  memory_size  = var.dispatcher_memory_size
  # One schedule period: a run stops starting ticks 20 s before its end (one gateway call's 15 s
  # timeout plus a margin, dispatcher-lambda.ts DEFAULT_RESERVE_MS), so a tick ends in time and
  # runs hardly overlap.
  timeout              = var.dispatcher_timeout
  reserved_concurrency = var.dispatcher_reserved_concurrency
  policy_json          = data.aws_iam_policy_document.dispatcher.json
  secrets              = local.aksk
  table_prefix         = var.table_prefix
  log_level            = var.log_level
  vpc_id               = var.vpc_id
  vpc_cidr_block       = var.vpc_cidr_block
  # 443: Secrets Manager endpoint; the gateways' control API (signed command batches).
  vpc_egress_ports = [443, var.gateway_control_port]
  subnet_ids       = var.subnet_ids

  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Schedule
################################################################################

resource "aws_cloudwatch_event_rule" "dispatcher" {
  count = local.create ? 1 : 0

  name                = "${var.name}-dispatcher"
  description         = "Runs the fleetgate task dispatcher"
  schedule_expression = var.dispatcher_schedule

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "dispatcher" {
  count = local.create ? 1 : 0

  rule = aws_cloudwatch_event_rule.dispatcher[0].name
  arn  = module.dispatcher.function_arn

  # A missed run is taken over by the next one (leases expire): no retries piling up behind it.
  retry_policy {
    maximum_event_age_in_seconds = 60
    maximum_retry_attempts       = 0
  }
}

resource "aws_lambda_permission" "schedule" {
  count = local.create ? 1 : 0

  statement_id  = "AllowDispatcherSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.dispatcher.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.dispatcher[0].arn
}

################################################################################
# The API's balancer: an Application Load Balancer invoking the function
#
# The manager sends tasks and configs to every agent, so it is private by default: an internal
# balancer in the private subnets, reachable from the VPC (and allowed_cidr_blocks: a VPN,
# peered networks). access = "public" puts it in the public subnets, HTTPS only (certificate_arn
# required), reachable only from allowed_cidr_blocks (required, and never 0.0.0.0/0).
################################################################################

module "balancer" {
  source = "../function-balancer"

  create                     = local.create
  name                       = "${var.name}-api"
  function_name              = module.api.function_name
  function_arn               = module.api.function_arn
  permission_statement_id    = "AllowManagerBalancer"
  target_group_name_prefix   = "fgmg-"
  security_group_description = "fleetgate manager API balancer: operators and consoles on ${local.api_port}"
  ingress_description        = "Manager API clients (allowlist)"
  vpc_id                     = var.vpc_id
  internal                   = !local.public
  subnet_ids                 = local.public ? var.public_subnet_ids : var.subnet_ids
  allowed_cidr_blocks        = local.api_cidrs
  port                       = local.api_port
  certificate_arn            = var.certificate_arn
  idle_timeout               = 60

  tags = var.tags
}

# Before, the balancer was written out here (as it was in modules/discovery).

moved {
  from = aws_security_group.api
  to   = module.balancer.aws_security_group.this
}

moved {
  from = aws_vpc_security_group_ingress_rule.api
  to   = module.balancer.aws_vpc_security_group_ingress_rule.this
}

moved {
  from = aws_lb.api
  to   = module.balancer.aws_lb.this
}

moved {
  from = aws_lb_target_group.api
  to   = module.balancer.aws_lb_target_group.this
}

moved {
  from = aws_lambda_permission.alb
  to   = module.balancer.aws_lambda_permission.this
}

moved {
  from = aws_lb_target_group_attachment.api
  to   = module.balancer.aws_lb_target_group_attachment.this
}

moved {
  from = aws_lb_listener.api
  to   = module.balancer.aws_lb_listener.this
}
