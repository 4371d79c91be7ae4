################################################################################
# Discovery as a Lambda function behind an API Gateway HTTP API ($default stage), and an
# Application Load Balancer listening for plain HTTP on 8088
#
# discovery/lambda.ts `handler` answers the Elkeid SD API (/registry/*) over the same
# DynamoDB registry the long-lived `fleetgate discovery` uses.
#
# - HTTP API (HTTPS): what the gateways register with (FLEETGATE_SD_ADDRS = its URL, requests
#   signed with the AK/SK pairs of the <name>/aksk secret, which the function reads at cold start).
# - ALB, HTTP on 8088: stock Elkeid agents ask discovery over plain HTTP
#   (`GET http://<sd>:8088/registry/detail?name=hids_svr_grpc&count=10`, docs/elkeid-protocol.md
#   §1.8), which API Gateway cannot answer. The balancer invokes the same function (the adapter
#   in platform/http/lambda-adapter.ts serves ALB events too).
################################################################################

locals {
  create      = var.create
  create_alb  = var.create && var.create_http_listener
  http_port   = 8088
  alb_subnets = var.http_listener_internal ? var.private_subnet_ids : var.public_subnet_ids
}

# discovery/registry-store.ts: Query a service name; Scan the small table for names and
# the summary (cached); conditional Update, then Put, per registration; Delete and
# BatchWrite(Delete) on evict.
data "aws_iam_policy_document" "registry" {
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
}

module "function" {
  source = "../function"

  create               = local.create
  name                 = var.name
  description          = "fleetgate service discovery (Elkeid SD API: /registry/*, /endpoint/*, /ping) over the DynamoDB registry"
  package_path         = var.package_path
  handler              = var.handler
  runtime              = var.runtime
  architecture         = var.architecture
  memory_size          = var.memory_size
  timeout              = var.timeout
  reserved_concurrency = var.reserved_concurrency
  policy_json          = data.aws_iam_policy_document.registry.json
  secrets              = { FLEETGATE_AKSK_SECRET_ARN = var.aksk_secret_arn }
  table_prefix         = var.table_prefix
  log_level            = var.log_level
  vpc_id               = var.vpc_id
  vpc_cidr_block       = var.vpc_cidr_block
  vpc_egress_ports     = [443] # the Secrets Manager endpoint
  subnet_ids           = var.subnet_ids

  # The HTTPS API is the gateways' (registration, AK/SK-signed): only their two routes and the
  # health check. Agents ask the 8088 balancer below, which forwards only their two paths.
  create_http_api        = true
  http_api_routes        = ["POST /registry/register", "POST /registry/evict", "GET /ping"]
  throttling_rate_limit  = var.throttling_rate_limit
  throttling_burst_limit = var.throttling_burst_limit

  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Application Load Balancer: plain HTTP on 8088 for stock agents
################################################################################

resource "aws_security_group" "alb" {
  count = local.create_alb ? 1 : 0

  name_prefix = "${var.name}-alb-"
  description = "fleetgate discovery balancer: agents' plain-HTTP discovery requests on ${local.http_port}"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_agents" {
  for_each = local.create_alb ? toset(var.agent_cidr_blocks) : toset([])

  security_group_id = aws_security_group.alb[0].id
  description       = "Agents asking discovery (GET /registry/detail)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.http_port
  to_port           = local.http_port
}

# The balancer invokes the function through the Lambda API, not over the network: no egress.

resource "aws_lb" "http" {
  count = local.create_alb ? 1 : 0

  # checkov:skip=CKV_AWS_91:The only target is the function, whose log group records every request it answers (and X-Ray traces it); access logs would need a bucket for the same lines.
  # checkov:skip=CKV2_AWS_20:Stock Elkeid agents speak plain HTTP to discovery and follow no redirect; HTTPS clients (the gateways) use the HTTP API instead.
  # checkov:skip=CKV2_AWS_28:WAF is for public web applications; this balancer answers one read-only, unauthenticated GET that returns gateway addresses, rate-limited by the function's reserved concurrency.
  name                       = substr("${var.name}-http", 0, 32)
  load_balancer_type         = "application"
  internal                   = var.http_listener_internal
  subnets                    = local.alb_subnets
  security_groups            = [aws_security_group.alb[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = 30

  tags = var.tags
}

resource "aws_lb_target_group" "function" {
  count = local.create_alb ? 1 : 0

  name_prefix = "fgsd-"
  target_type = "lambda"

  # Single-value headers (the adapter answers in the mode of the event it receives).
  lambda_multi_value_headers_enabled = false

  health_check {
    enabled             = true
    path                = "/ping"
    matcher             = "200"
    interval            = 60
    timeout             = 30
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lambda_permission" "alb" {
  count = local.create_alb ? 1 : 0

  statement_id  = "AllowDiscoveryBalancer"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = aws_lb_target_group.function[0].arn
}

resource "aws_lb_target_group_attachment" "function" {
  count = local.create_alb ? 1 : 0

  target_group_arn = aws_lb_target_group.function[0].arn
  target_id        = module.function.function_arn

  depends_on = [aws_lambda_permission.alb]
}

resource "aws_lb_listener" "http" {
  count = local.create_alb ? 1 : 0

  # checkov:skip=CKV_AWS_2:Plain HTTP on purpose: stock Elkeid agents ask discovery over http:// only (docs/elkeid-protocol.md §1.8). The answer holds gateway addresses, which the agents then reach over mutual TLS.
  # checkov:skip=CKV_AWS_103:Same: no TLS on this listener, so there is no TLS policy to set.
  load_balancer_arn = aws_lb.http[0].arn
  port              = local.http_port
  protocol          = "HTTP"

  # Only what agents need reaches the function (the rule below); the registry's lists, summary
  # and endpoints are not answered here.
  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      message_body = "{\"msg\":\"not found\"}"
      status_code  = "404"
    }
  }

  tags = var.tags
}

# Stock agents: GET /registry/detail?name=hids_svr_grpc (their gateway list); the balancer's own
# health check and Elkeid's /ping.
resource "aws_lb_listener_rule" "agents" {
  count = local.create_alb ? 1 : 0

  listener_arn = aws_lb_listener.http[0].arn
  priority     = 10

  condition {
    http_request_method {
      values = ["GET"]
    }
  }

  condition {
    path_pattern {
      values = ["/registry/detail", "/ping"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.function[0].arn
  }

  tags = var.tags
}

################################################################################
# Before the function, its role and its HTTP API moved into modules/function
################################################################################

moved {
  from = aws_cloudwatch_log_group.function[0]
  to   = module.function.aws_cloudwatch_log_group.this["function"]
}

moved {
  from = aws_cloudwatch_log_group.api[0]
  to   = module.function.aws_cloudwatch_log_group.this["api"]
}

moved {
  from = aws_iam_role.function[0]
  to   = module.function.aws_iam_role.this[0]
}

moved {
  from = aws_iam_role_policy.function[0]
  to   = module.function.aws_iam_role_policy.this["function"]
}

moved {
  from = aws_iam_role_policy_attachment.vpc[0]
  to   = module.function.aws_iam_role_policy_attachment.vpc[0]
}

moved {
  from = aws_security_group.function[0]
  to   = module.function.aws_security_group.this[0]
}

moved {
  from = aws_vpc_security_group_egress_rule.dynamodb[0]
  to   = module.function.aws_vpc_security_group_egress_rule.dynamodb[0]
}

moved {
  from = aws_lambda_function.this[0]
  to   = module.function.aws_lambda_function.this[0]
}

moved {
  from = aws_apigatewayv2_api.this[0]
  to   = module.function.aws_apigatewayv2_api.this[0]
}

moved {
  from = aws_apigatewayv2_integration.this[0]
  to   = module.function.aws_apigatewayv2_integration.this[0]
}

moved {
  from = aws_apigatewayv2_route.default[0]
  to   = module.function.aws_apigatewayv2_route.default[0]
}

moved {
  from = aws_apigatewayv2_stage.default[0]
  to   = module.function.aws_apigatewayv2_stage.default[0]
}

moved {
  from = aws_lambda_permission.api[0]
  to   = module.function.aws_lambda_permission.api[0]
}
