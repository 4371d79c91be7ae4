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
#
# Only what agents need reaches the function: GET /registry/detail?name=hids_svr_grpc (their
# gateway list) and /ping (Elkeid's, and the balancer's health check); the registry's lists,
# summary and endpoints are the balancer's 404. Plain HTTP on purpose: stock Elkeid agents ask
# discovery over http:// only (docs/elkeid-protocol.md §1.8) and follow no redirect; the answer
# holds gateway addresses, which the agents then reach over mutual TLS.
################################################################################

module "balancer" {
  source = "../function-balancer"

  create                     = local.create_alb
  name                       = "${var.name}-http"
  security_group_name        = "${var.name}-alb"
  function_name              = module.function.function_name
  function_arn               = module.function.function_arn
  permission_statement_id    = "AllowDiscoveryBalancer"
  target_group_name_prefix   = "fgsd-"
  security_group_description = "fleetgate discovery balancer: agents' plain-HTTP discovery requests on ${local.http_port}"
  ingress_description        = "Agents asking discovery (GET /registry/detail)"
  vpc_id                     = var.vpc_id
  internal                   = var.http_listener_internal
  subnet_ids                 = local.alb_subnets
  allowed_cidr_blocks        = var.agent_cidr_blocks
  port                       = local.http_port
  idle_timeout               = 30
  forward_paths              = ["/registry/detail", "/ping"]
  forward_methods            = ["GET"]

  tags = var.tags
}

################################################################################
# Before, the balancer was written out here (as it was in modules/manager)
################################################################################

moved {
  from = aws_security_group.alb
  to   = module.balancer.aws_security_group.this
}

moved {
  from = aws_vpc_security_group_ingress_rule.alb_agents
  to   = module.balancer.aws_vpc_security_group_ingress_rule.this
}

moved {
  from = aws_lb.http
  to   = module.balancer.aws_lb.this
}

moved {
  from = aws_lb_target_group.function
  to   = module.balancer.aws_lb_target_group.this
}

moved {
  from = aws_lambda_permission.alb
  to   = module.balancer.aws_lambda_permission.this
}

moved {
  from = aws_lb_target_group_attachment.function
  to   = module.balancer.aws_lb_target_group_attachment.this
}

moved {
  from = aws_lb_listener.http
  to   = module.balancer.aws_lb_listener.this
}

moved {
  from = aws_lb_listener_rule.agents
  to   = module.balancer.aws_lb_listener_rule.this
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
