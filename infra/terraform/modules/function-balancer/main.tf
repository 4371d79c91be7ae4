################################################################################
# An Application Load Balancer in front of one Lambda function: its security group (an
# allowlist on the listener's port), the balancer, a `lambda` target group, the permission that
# lets the balancer invoke the function, and the listener: HTTPS with certificate_arn, plain HTTP
# without. With forward_paths the listener answers 404 itself and forwards only those paths (for
# the methods in forward_methods); without, it forwards everything.
#
# Used by modules/discovery (stock agents' plain-HTTP discovery on 8088) and modules/manager
# (the manager API, internal by default).
################################################################################

locals {
  create = var.create
  https  = var.certificate_arn != ""
  routed = length(var.forward_paths) > 0

  security_group_name = coalesce(var.security_group_name, var.name)
}

resource "aws_security_group" "this" {
  count = local.create ? 1 : 0

  name_prefix = "${local.security_group_name}-"
  description = var.security_group_description
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.security_group_name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.create ? toset(var.allowed_cidr_blocks) : toset([])

  security_group_id = aws_security_group.this[0].id
  description       = var.ingress_description
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
}

# The balancer invokes the function through the Lambda API, not over the network: no egress.

resource "aws_lb" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_91:The only target is the function, whose log group records every request it answers; access logs would need a bucket for the same lines.
  # checkov:skip=CKV2_AWS_28:Reachable only from allowed_cidr_blocks; the manager API authenticates every request (tokens, API keys) and rate-limits sign-in; discovery's balancer answers one read-only GET of gateway addresses, rate-limited by the function's reserved concurrency.
  # checkov:skip=CKV2_AWS_20:HTTPS whenever certificate_arn is set (the manager's public option requires it); plain HTTP otherwise: the internal manager balancer inside the VPC, and stock Elkeid agents, which ask discovery over http:// only and follow no redirect.
  name                       = substr(var.name, 0, 32)
  load_balancer_type         = "application"
  internal                   = var.internal
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.this[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = var.idle_timeout

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  count = local.create ? 1 : 0

  name_prefix = var.target_group_name_prefix
  target_type = "lambda"

  # Single-value headers (the adapter answers in the mode of the event it receives).
  lambda_multi_value_headers_enabled = false

  health_check {
    enabled             = true
    path                = var.health_check_path
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

resource "aws_lambda_permission" "this" {
  count = local.create ? 1 : 0

  statement_id  = var.permission_statement_id
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = aws_lb_target_group.this[0].arn
}

resource "aws_lb_target_group_attachment" "this" {
  count = local.create ? 1 : 0

  target_group_arn = aws_lb_target_group.this[0].arn
  target_id        = var.function_arn

  depends_on = [aws_lambda_permission.this]
}

resource "aws_lb_listener" "this" {
  count = local.create ? 1 : 0

  # checkov:skip=CKV_AWS_2:HTTPS whenever certificate_arn is set (required for the manager's public option); plain HTTP only on the internal manager balancer and for stock Elkeid agents, which ask discovery over http:// only (docs/elkeid-protocol.md §1.8) and then reach the gateways over mutual TLS.
  # checkov:skip=CKV_AWS_103:TLS 1.2 or later (ELBSecurityPolicy-TLS13-1-2-2021-06) whenever the listener is HTTPS; a plain HTTP listener has no TLS policy.
  load_balancer_arn = aws_lb.this[0].arn
  port              = var.port
  protocol          = local.https ? "HTTPS" : "HTTP"
  certificate_arn   = local.https ? var.certificate_arn : null
  ssl_policy        = local.https ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  # Everything to the function, or (forward_paths) only those paths: the rest is a 404 here.
  dynamic "default_action" {
    for_each = local.routed ? [] : [1]

    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.this[0].arn
    }
  }

  dynamic "default_action" {
    for_each = local.routed ? [1] : []

    content {
      type = "fixed-response"

      fixed_response {
        content_type = "application/json"
        message_body = "{\"msg\":\"not found\"}"
        status_code  = "404"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "this" {
  count = local.create && local.routed ? 1 : 0

  listener_arn = aws_lb_listener.this[0].arn
  priority     = 10

  condition {
    http_request_method {
      values = var.forward_methods
    }
  }

  condition {
    path_pattern {
      values = var.forward_paths
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  tags = var.tags
}
