################################################################################
# fleetgate on AWS: gateways (ECS) behind a Network Load Balancer, discovery (Lambda behind an
# HTTP API, and an ALB on 8088 for stock agents), the manager API and the task dispatcher
# (Lambda), the tables of platform/store/schema.ts (DynamoDB), Kafka (MSK, TLS), secrets, alarms.
# docs/deploy.md walks through it; README.md here has the sizing and the checks.
################################################################################

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge(var.tags, { "fleetgate:deployment" = var.name })

  # The network: the one modules/network creates, or an existing VPC (existing_vpc).
  vpc_id             = var.existing_vpc == null ? module.network.vpc_id : var.existing_vpc.vpc_id
  vpc_cidr_block     = var.existing_vpc == null ? module.network.vpc_cidr_block : var.existing_vpc.cidr_block
  private_subnet_ids = var.existing_vpc == null ? module.network.private_subnet_ids : var.existing_vpc.private_subnet_ids
  public_subnet_ids  = var.existing_vpc == null ? module.network.public_subnet_ids : var.existing_vpc.public_subnet_ids

  # The gateways speak TLS to MSK (9094) unless told otherwise.
  kafka_brokers = var.create_kafka ? (var.kafka_tls ? module.kafka.bootstrap_brokers_tls : module.kafka.bootstrap_brokers) : var.kafka_bootstrap_brokers

  # The gateways register in both modes: the registry's live counts and limits are what the
  # manager's rebalance and load control act on. Discovery hands agents the tasks' own (private)
  # addresses, so its 8088 balancer exists by default only when agents route into the VPC.
  gateways_register       = var.gateway_register_with_discovery
  discovery_http_listener = coalesce(var.discovery_http_listener, var.load_balancer_internal)
  gateway_discovery_addrs = concat(
    local.gateways_register ? [module.discovery.api_endpoint] : [],
    var.gateway_discovery_addrs,
  )
}

################################################################################
# One customer-managed key for the stack: tables, secrets, logs, brokers, alarm topic
################################################################################

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:A key policy's resource "*" means this key; the account root statement is what lets IAM policies grant the key at all (AWS's default key policy).
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
    sid = "CloudWatchLogsEncryptsLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.id}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }

  statement {
    sid = "CloudWatchAlarmsPublishToEncryptedTopic"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "fleetgate ${var.name}: tables, secrets, logs, Kafka, alarms"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Modules
################################################################################

module "network" {
  source = "./modules/network"

  create = var.existing_vpc == null

  name                    = var.name
  cidr                    = var.vpc_cidr
  azs                     = var.azs
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
  kms_key_arn             = aws_kms_key.this.arn

  tags = local.tags
}

module "tables" {
  source = "./modules/tables"

  table_prefix         = var.table_prefix
  billing_mode         = var.table_billing_mode
  provisioned_capacity = var.table_provisioned_capacity
  deletion_protection  = var.table_deletion_protection
  kms_key_arn          = aws_kms_key.this.arn
  # The agents table takes a reconnect storm's status writes (sizing.tf, from the capacity model).
  warm_throughput = var.table_warm_throughput && var.table_billing_mode == "PAY_PER_REQUEST" ? {
    agents = { read = local.agents_table_warm_read_units, write = local.agents_table_warm_write_units }
  } : {}

  tags = local.tags
}

module "secrets" {
  source = "./modules/secrets"

  name        = var.name
  kms_key_arn = aws_kms_key.this.arn

  tags = local.tags
}

module "kafka" {
  source = "./modules/kafka"

  create                    = var.create_kafka
  name                      = var.name
  vpc_id                    = local.vpc_id
  vpc_cidr_block            = local.vpc_cidr_block
  subnet_ids                = local.private_subnet_ids
  client_security_group_ids = [module.gateways.task_security_group_id]
  broker_count              = local.kafka_broker_count
  broker_instance_type      = var.kafka_broker_instance_type
  broker_volume_size_gib    = local.kafka_volume_gib
  topic                     = var.kafka_topic
  partitions                = local.kafka_partitions
  client_broker_encryption  = var.kafka_client_encryption
  client_cidr_blocks        = var.kafka_client_cidr_blocks
  auto_create_topics        = var.kafka_auto_create_topics
  retention_hours           = var.kafka_retention_hours
  client_ca_arns            = var.kafka_client_ca_arns
  kms_key_arn               = aws_kms_key.this.arn
  log_group_name            = module.observability.kafka_log_group_name

  tags = local.tags
}

module "gateways" {
  source = "./modules/gateways"

  name                     = var.name
  image                    = var.gateway_image
  vpc_id                   = local.vpc_id
  vpc_cidr_block           = local.vpc_cidr_block
  private_subnet_ids       = local.private_subnet_ids
  load_balancer_subnet_ids = var.load_balancer_internal ? local.private_subnet_ids : local.public_subnet_ids
  load_balancer_internal   = var.load_balancer_internal
  agent_cidr_blocks        = var.agent_cidr_blocks

  launch_type       = var.gateway_launch_type
  cpu               = var.gateway_cpu
  memory            = var.gateway_memory
  ec2_instance_type = var.gateway_ec2_instance_type
  max_connections   = local.gateway_max_connections
  workers           = local.gateway_workers
  processes         = var.gateway_processes

  desired_count                  = local.gateway_count
  min_count                      = local.gateway_count
  max_count                      = local.gateway_max_count
  target_connections_per_gateway = local.planned_agents_per_gateway
  target_cpu_percent             = local.model.scale_out_cpu_pct
  scale_out_event_loop_lag_ms    = local.model.scale_out_lag_ms

  identity           = var.identity
  kafka_brokers      = local.kafka_brokers
  kafka_tls          = var.kafka_tls
  kafka_client_cert  = length(var.kafka_client_ca_arns) > 0
  kafka_topic        = var.kafka_topic
  discovery_addrs    = local.gateway_discovery_addrs
  table_prefix       = var.table_prefix
  table_arns         = module.tables.table_arns
  index_arns         = module.tables.index_arns
  log_level          = var.gateway_log_level
  extra_environment  = var.gateway_extra_environment
  pki_secret_arn     = module.secrets.pki_secret_arn
  aksk_secret_arn    = module.secrets.aksk_secret_arn
  log_retention_days = var.log_retention_days

  cloudwatch_agent_image = var.cloudwatch_agent_image
  kms_key_arn            = aws_kms_key.this.arn

  tags = local.tags
}

module "discovery" {
  source = "./modules/discovery"

  name                 = "${var.name}-discovery"
  package_path         = var.discovery_package_path
  registry_table_arn   = module.tables.table_arns["registry"]
  aksk_secret_arn      = module.secrets.aksk_secret_arn
  table_prefix         = var.table_prefix
  vpc_id               = local.vpc_id
  vpc_cidr_block       = local.vpc_cidr_block
  subnet_ids           = local.private_subnet_ids
  reserved_concurrency = var.discovery_reserved_concurrency
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn

  # Plain HTTP on 8088 for stock agents, on the same side (internal or public) as the agents' NLB.
  create_http_listener   = local.discovery_http_listener
  http_listener_internal = var.load_balancer_internal
  private_subnet_ids     = local.private_subnet_ids
  public_subnet_ids      = local.public_subnet_ids
  agent_cidr_blocks      = var.agent_cidr_blocks

  tags = local.tags
}

module "manager" {
  source = "./modules/manager"

  create                          = var.create_manager
  name                            = "${var.name}-manager"
  package_path                    = var.manager_package_path
  dispatcher_package_path         = var.dispatcher_package_path
  reserved_concurrency            = var.manager_reserved_concurrency
  dispatcher_reserved_concurrency = var.dispatcher_reserved_concurrency
  aksk_secret_arn                 = module.secrets.aksk_secret_arn
  manager_secret_arn              = module.secrets.manager_secret_arn
  table_arns                      = module.tables.table_arns
  index_arns                      = module.tables.index_arns
  registry_table_arn              = module.tables.table_arns["registry"]
  table_prefix                    = var.table_prefix
  vpc_id                          = local.vpc_id
  vpc_cidr_block                  = local.vpc_cidr_block
  subnet_ids                      = local.private_subnet_ids
  log_retention_days              = var.log_retention_days
  kms_key_arn                     = aws_kms_key.this.arn

  # Private by default (docs/deploy.md, "The manager API").
  access              = var.manager_access
  allowed_cidr_blocks = var.manager_allowed_cidr_blocks
  certificate_arn     = var.manager_certificate_arn
  public_subnet_ids   = local.public_subnet_ids

  tags = local.tags
}

module "observability" {
  source = "./modules/observability"

  name                     = var.name
  kms_key_arn              = aws_kms_key.this.arn
  log_retention_days       = var.log_retention_days
  alarm_emails             = var.alarm_emails
  metrics_namespace        = module.gateways.metrics_namespace
  gateway_dimensions       = module.gateways.metric_dimensions
  gateway_max_connections  = local.gateway_max_connections
  gateway_processes        = var.gateway_processes
  expected_agents          = var.expected_agents
  load_balancer_arn_suffix = module.gateways.load_balancer_arn_suffix
  target_group_arn_suffix  = module.gateways.target_group_arn_suffix
  discovery_function_name  = module.discovery.function_name
  discovery_api_id         = module.discovery.api_id

  manager_function_name     = module.manager.function_name
  dispatcher_function_name  = module.manager.dispatcher_function_name
  dispatcher_log_group_name = module.manager.dispatcher_log_group_name
  kafka_cluster_name        = module.kafka.cluster_name
  kafka_broker_count        = var.create_kafka ? local.kafka_broker_count : 0
  event_loop_lag_alarm_ms   = local.model.lag_alarm_ms
  table_names               = module.tables.table_names

  tags = local.tags
}
