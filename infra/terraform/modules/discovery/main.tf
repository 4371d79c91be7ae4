################################################################################
# Discovery as a Lambda function behind an API Gateway HTTP API ($default stage)
#
# gateway/discovery/lambda.ts `handler` answers the Elkeid SD API (/registry/*) over the same
# DynamoDB registry the long-lived `fleetgate discovery` uses. The $default stage matters: on a
# named stage API Gateway puts the stage into rawPath, which is also what AK/SK clients sign.
#
# The API is HTTPS only (API Gateway accepts no plain HTTP); stock Elkeid agents ask discovery
# over plain HTTP. docs/deploy.md ("How agents find a gateway") covers both.
################################################################################

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_ec2_managed_prefix_list" "dynamodb" {
  name = "com.amazonaws.${data.aws_region.current.region}.dynamodb"
}

locals {
  create        = var.create
  function_name = var.name
}

resource "aws_cloudwatch_log_group" "function" {
  count = local.create ? 1 : 0

  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "api" {
  count = local.create ? 1 : 0

  name              = "/fleetgate/${var.name}/api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# IAM: the registry table and the function's own log group, nothing else
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

data "aws_iam_policy_document" "function" {
  count = local.create ? 1 : 0

  # gateway/discovery/registry-store.ts: Query a service name; Scan the small table for names and
  # the summary (cached); conditional Update, then Put, per registration; Delete and
  # BatchWrite(Delete) on evict.
  statement {
    sid = "RegistryTable"
    actions = [
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
    ]
    resources = [var.registry_table_arn]
  }

  statement {
    sid = "OwnLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.function[0].arn}:*"]
  }

  statement {
    sid       = "EnvironmentKey"
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

resource "aws_iam_role" "function" {
  count = local.create ? 1 : 0

  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "function" {
  count = local.create ? 1 : 0

  name   = "discovery"
  role   = aws_iam_role.function[0].id
  policy = data.aws_iam_policy_document.function[0].json
}

# Network interfaces in the VPC (AWS's managed policy for exactly this).
resource "aws_iam_role_policy_attachment" "vpc" {
  count = local.create ? 1 : 0

  role       = aws_iam_role.function[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

################################################################################
# Function
################################################################################

resource "aws_security_group" "function" {
  count = local.create ? 1 : 0

  name_prefix = "${var.name}-"
  description = "fleetgate discovery function: HTTPS to DynamoDB only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "dynamodb" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.function[0].id
  description       = "DynamoDB through the VPC gateway endpoint"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.dynamodb.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_lambda_function" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a dead-letter queue applies to asynchronous invocations.
  # checkov:skip=CKV_AWS_272:The zip is built from this repository by npm run build:lambda in the same pipeline that applies it; code signing would need a signing profile outside this stack.
  function_name    = local.function_name
  description      = "fleetgate service discovery (Elkeid SD API) over the DynamoDB registry"
  role             = aws_iam_role.function[0].arn
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
    variables = {
      FLEETGATE_TABLE_PREFIX = var.table_prefix
      FLEETGATE_LOG_LEVEL    = var.log_level
      NODE_OPTIONS           = "--enable-source-maps"
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.function[0].id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[0].name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.function, aws_iam_role_policy_attachment.vpc]
}

################################################################################
# HTTP API, $default stage and route
################################################################################

resource "aws_apigatewayv2_api" "this" {
  count = local.create ? 1 : 0

  name          = var.name
  description   = "fleetgate discovery (Elkeid SD API: /registry/*, /endpoint/*, /ping)"
  protocol_type = "HTTP"

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "this" {
  count = local.create ? 1 : 0

  api_id                 = aws_apigatewayv2_api.this[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this[0].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 10000
}

resource "aws_apigatewayv2_route" "default" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_309:Elkeid's SD API is unauthenticated for reads (agents ask /registry/detail without credentials); register and evict are AK/SK-signed and verified by the handler itself.
  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.this[0].id}"
}

resource "aws_apigatewayv2_stage" "default" {
  count = local.create ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api[0].arn
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
  count = local.create ? 1 : 0

  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[0].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/*/$default"
}
