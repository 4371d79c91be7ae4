################################################################################
# Broker configuration: the topic settings the gateway relies on
#
# The gateway produces with acks = all (workers/kafka/producer.ts) and counts a record as
# accepted only then; with replication factor 3 and min.insync.replicas 2 an acknowledged record
# is on at least two brokers in two zones, and one broker can be down (patching, failure)
# without refusing writes. Unclean leader election stays off so an out-of-date replica never
# becomes leader and drops acknowledged records.
################################################################################

locals {
  client_ports = var.client_broker_encryption == "TLS" ? [9094] : [9092, 9094]
}

resource "aws_msk_configuration" "this" {
  count = var.create ? 1 : 0

  name           = "${var.name}-brokers"
  kafka_versions = [var.kafka_version]
  description    = "fleetgate: topic ${var.topic} with ${var.partitions} partitions, replication 3, min.insync.replicas 2"

  server_properties = <<-PROPERTIES
    auto.create.topics.enable=${var.auto_create_topics}
    num.partitions=${var.partitions}
    default.replication.factor=3
    min.insync.replicas=2
    unclean.leader.election.enable=false
    log.retention.hours=${var.retention_hours}
    message.max.bytes=${var.max_message_bytes}
    replica.fetch.max.bytes=${var.max_message_bytes}
    offsets.topic.replication.factor=3
    transaction.state.log.replication.factor=3
    transaction.state.log.min.isr=2
  PROPERTIES
}

################################################################################
# Network access
################################################################################

resource "aws_security_group" "this" {
  count = var.create ? 1 : 0

  name_prefix = "${var.name}-msk-"
  description = "fleetgate MSK brokers: Kafka from the gateways and the listed consumers"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-msk" })

  lifecycle {
    create_before_destroy = true
  }
}

# 9094: TLS (the gateways' producer with FLEETGATE_KAFKA_TLS=1). 9092, plaintext, only when
# client_broker_encryption is TLS_PLAINTEXT (consumers that cannot speak TLS).
# Keyed by position: the groups' IDs are only known after they are created.
resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  for_each = var.create ? { for pair in setproduct(range(length(var.client_security_group_ids)), local.client_ports) : "${pair[0]}-${pair[1]}" => pair } : {}

  security_group_id            = aws_security_group.this[0].id
  description                  = "Kafka from fleetgate gateways (port ${each.value[1]})"
  referenced_security_group_id = var.client_security_group_ids[each.value[0]]
  ip_protocol                  = "tcp"
  from_port                    = each.value[1]
  to_port                      = each.value[1]
}

resource "aws_vpc_security_group_ingress_rule" "from_cidrs" {
  for_each = var.create ? { for pair in setproduct(var.client_cidr_blocks, local.client_ports) : "${pair[0]}-${pair[1]}" => pair } : {}

  security_group_id = aws_security_group.this[0].id
  description       = "Kafka from consumers (port ${each.value[1]})"
  cidr_ipv4         = each.value[0]
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "within_vpc" {
  count = var.create ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "Replication between brokers and answers to clients"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
}

################################################################################
# Cluster
################################################################################

resource "aws_msk_cluster" "this" {
  count = var.create ? 1 : 0

  # checkov:skip=CKV_AWS_81:Encryption at rest (the stack key) and between brokers is on; client_broker is client_broker_encryption, TLS by default, which checkov cannot resolve through the variable. TLS_PLAINTEXT is an explicit opt-in for consumers without TLS.
  # checkov:skip=CKV_AWS_291:Clients are authenticated with TLS certificates of client_ca_arns (the root module's kafka_client_ca_arns); checkov cannot resolve the dynamic block. Unauthenticated access remains only when no CA is given, then limited to the gateways' security group and client_cidr_blocks inside private subnets.
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this[0].id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size_gib
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this[0].arn
    revision = aws_msk_configuration.this[0].latest_revision
  }

  # TLS client authentication with certificates of the given ACM Private CAs (the gateways
  # present theirs: FLEETGATE_KAFKA_CERT_FILE); unauthenticated only when none is given.
  client_authentication {
    unauthenticated = length(var.client_ca_arns) == 0

    dynamic "tls" {
      for_each = length(var.client_ca_arns) > 0 ? [var.client_ca_arns] : []

      content {
        certificate_authority_arns = tls.value
      }
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn

    encryption_in_transit {
      client_broker = var.client_broker_encryption
      in_cluster    = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = var.log_group_name
      }
    }
  }

  tags = var.tags
}
