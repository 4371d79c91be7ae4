################################################################################
# One fleetgate Lambda function: its log group, execution role, security group, the function
# (from a zip of scripts/build-lambda.mjs, in the VPC, X-Ray on), and optionally an API Gateway
# HTTP API in front of it ($default stage and route).
#
# Used by the discovery and manager modules for discovery, the manager API and the dispatcher:
# what differs between them (the DynamoDB statements, the secrets, the egress) comes in as
# variables; the caller's policy document holds its table statements, so every DynamoDB grant
# stays next to the code it is for.
#
# Secrets: `secrets` maps an environment variable to a Secrets Manager ARN
# (FLEETGATE_AKSK_SECRET_ARN => arn). The function gets the ARN, never the value, and reads it at
# cold start (platform/config/secrets-manager.ts); the role may GetSecretValue on exactly those
# ARNs. The $default stage matters: on a named stage API Gateway puts the stage into rawPath,
# which is also what AK/SK clients sign.
################################################################################

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

data "aws_ec2_managed_prefix_list" "dynamodb" {
  count = var.create ? 1 : 0

  name = "com.amazonaws.${data.aws_region.current.id}.dynamodb"
}

locals {
  create = var.create

  # The function's log group and its ARN, built from the name rather than read from the created
  # group: the policy below then holds only values known at plan time, so `terraform plan` shows
  # the whole policy a change grants (a reference to a resource being created would defer it to
  # apply, "known after apply").
  log_group_name = "/aws/lambda/${var.name}"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}"

  environment = merge(
    {
      FLEETGATE_TABLE_PREFIX = var.table_prefix
      FLEETGATE_LOG_LEVEL    = var.log_level
      NODE_OPTIONS           = "--enable-source-maps"
    },
    var.secrets,
    var.environment,
  )
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.create ? merge(
    { function = local.log_group_name },
    var.create_http_api ? { api = "/fleetgate/${var.name}/api-access" } : {},
  ) : {}

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# IAM: the caller's statements, the function's own log group, its secrets, the stack key
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "this" {
  count = local.create ? 1 : 0

  source_policy_documents = [var.policy_json]

  statement {
    sid = "OwnLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${local.log_group_arn}:*"]
  }

  statement {
    sid       = "EnvironmentAndSecretsKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  # X-Ray accepts no resource but "*" for these two write actions.
  statement {
    sid = "Tracing"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
    ]
    resources = ["*"]
  }
}

# Only when there are secrets: a statement with no resource is not a valid policy.
data "aws_iam_policy_document" "secrets" {
  count = local.create && length(var.secrets) > 0 ? 1 : 0

  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = sort(values(var.secrets))
  }
}

resource "aws_iam_role" "this" {
  count = local.create ? 1 : 0

  name_prefix        = "${substr(var.name, 0, 37)}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  for_each = local.create ? merge(
    { function = data.aws_iam_policy_document.this[0].json },
    length(var.secrets) > 0 ? { secrets = data.aws_iam_policy_document.secrets[0].json } : {},
  ) : {}

  name   = each.key
  role   = aws_iam_role.this[0].id
  policy = each.value
}

# Network interfaces in the VPC (AWS's managed policy for exactly this).
resource "aws_iam_role_policy_attachment" "vpc" {
  count = local.create ? 1 : 0

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

################################################################################
# Security group: DynamoDB through the gateway endpoint, plus the caller's ports in the VPC
################################################################################

resource "aws_security_group" "this" {
  count = local.create ? 1 : 0

  name_prefix = "${var.name}-"
  description = "fleetgate ${var.name}: HTTPS to DynamoDB${length(var.vpc_egress_ports) > 0 ? ", TCP ${join("/", var.vpc_egress_ports)} in the VPC" : ""}"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "dynamodb" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "DynamoDB through the VPC gateway endpoint"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.dynamodb[0].id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  for_each = local.create ? toset([for p in var.vpc_egress_ports : tostring(p)]) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = each.value == "443" ? "VPC interface endpoints (Secrets Manager)" : "TCP ${each.value} in the VPC"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_116:Synchronous callers (API Gateway, the ALB) get the error themselves; the dispatcher runs on a one-minute schedule whose next run takes over expired leases, so a failed run is retried without a queue.
  # checkov:skip=CKV_AWS_272:The zip is built from this repository by npm run build:lambda in the same pipeline that applies it; code signing would need a signing profile outside this stack.
  function_name    = var.name
  description      = var.description
  role             = aws_iam_role.this[0].arn
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  handler          = var.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = var.memory_size
  timeout          = var.timeout
  kms_key_arn      = var.kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.this[0].id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this["function"].name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this, aws_iam_role_policy_attachment.vpc]
}

################################################################################
# HTTP API, $default stage and route
################################################################################

resource "aws_apigatewayv2_api" "this" {
  count = local.create && var.create_http_api ? 1 : 0

  name          = var.name
  description   = var.description
  protocol_type = "HTTP"

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "this" {
  count = local.create && var.create_http_api ? 1 : 0

  api_id                 = aws_apigatewayv2_api.this[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this[0].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = min(30000, var.timeout * 1000)
}

# Only the routes the API's clients need (http_api_routes); anything else is API Gateway's 404.
resource "aws_apigatewayv2_route" "default" {
  for_each = local.create && var.create_http_api ? toset(var.http_api_routes) : toset([])

  # checkov:skip=CKV_AWS_309:The functions authenticate requests themselves: Elkeid's SD writes and gateway callbacks are AK/SK-signed, the manager API takes its own tokens and API keys.
  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.this[0].id}"
}

moved {
  from = aws_apigatewayv2_route.default[0]
  to   = aws_apigatewayv2_route.default["$default"]
}

resource "aws_apigatewayv2_stage" "default" {
  count = local.create && var.create_http_api ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.this["api"].arn
    format = jsonencode({
      requestId = "$context.requestId"
      ip        = "$context.identity.sourceIp"
      method    = "$context.httpMethod"
      path      = "$context.path"
      status    = "$context.status"
      latencyMs = "$context.responseLatency"
      error     = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  count = local.create && var.create_http_api ? 1 : 0

  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[0].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/*"
}
