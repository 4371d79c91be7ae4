################################################################################
# Tables
#
# Every table of platform/store/schema.ts, from schema.tf.json (generated from that module by
# scripts/gen-tables-tf.ts; a test fails when it is stale). Nothing here names a table or a key
# attribute by hand.
################################################################################

locals {
  table_keys = var.create ? toset(keys(local.schema_tables)) : toset([])

  capacity = {
    for k in keys(local.schema_tables) : k => lookup(var.provisioned_capacity, k, {
      read    = var.default_capacity.read
      write   = var.default_capacity.write
      indexes = {}
    })
  }
  provisioned = var.billing_mode == "PROVISIONED"
}

resource "aws_dynamodb_table" "this" {
  for_each = local.table_keys

  name         = "${var.table_prefix}${local.schema_tables[each.key].suffix}"
  billing_mode = var.billing_mode
  hash_key     = local.schema_tables[each.key].hash_key
  range_key    = local.schema_tables[each.key].range_key

  read_capacity  = local.provisioned ? local.capacity[each.key].read : null
  write_capacity = local.provisioned ? local.capacity[each.key].write : null

  dynamic "attribute" {
    for_each = local.schema_tables[each.key].attributes

    content {
      name = attribute.value.name
      type = attribute.value.type
    }
  }

  dynamic "global_secondary_index" {
    for_each = local.schema_tables[each.key].global_secondary_indexes

    content {
      name               = global_secondary_index.value.name
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection_type
      non_key_attributes = global_secondary_index.value.projection_type == "INCLUDE" ? global_secondary_index.value.non_key_attributes : null
      read_capacity      = local.provisioned ? try(local.capacity[each.key].indexes[global_secondary_index.value.name].read, local.capacity[each.key].read) : null
      write_capacity     = local.provisioned ? try(local.capacity[each.key].indexes[global_secondary_index.value.name].write, local.capacity[each.key].write) : null
    }
  }

  # Expiry in epoch seconds (the schema module's `ttl`). DynamoDB deletes lazily; every reader
  # also filters expired items itself.
  dynamic "ttl" {
    for_each = local.schema_tables[each.key].ttl_attribute != null ? [local.schema_tables[each.key].ttl_attribute] : []

    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = merge(var.tags, { "fleetgate:table" = each.key })
}

################################################################################
# Warm throughput: a new on-demand table serves about 4,000 writes/s at first and grows with
# traffic; a million agents connecting (or reconnecting after an outage) write their status far
# faster. The capacity model sizes the warm throughput (sizing.tf), and it is set before agents
# arrive. AWS provider 5.x has no warm_throughput argument on aws_dynamodb_table (6.x has), so
# the AWS CLI sets it at apply time, once per change of the numbers; it needs `aws` (v2.18 or
# later) and the deploying credentials on the machine that applies. Warm throughput is billed
# once, when raised.
################################################################################

resource "terraform_data" "warm_throughput" {
  for_each = var.create ? var.warm_throughput : {}

  triggers_replace = {
    table = aws_dynamodb_table.this[each.key].name
    read  = each.value.read
    write = each.value.write
  }

  provisioner "local-exec" {
    command = "aws dynamodb update-table --region \"$REGION\" --table-name \"$TABLE\" --warm-throughput ReadUnitsPerSecond=$READ,WriteUnitsPerSecond=$WRITE"
    environment = {
      REGION = split(":", aws_dynamodb_table.this[each.key].arn)[3]
      TABLE  = aws_dynamodb_table.this[each.key].name
      READ   = tostring(each.value.read)
      WRITE  = tostring(each.value.write)
    }
  }
}
