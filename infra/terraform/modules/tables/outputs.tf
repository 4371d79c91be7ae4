output "table_names" {
  description = "Table name per table key of platform/store/schema.ts."
  value       = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "table_arns" {
  description = "Table ARN per table key of platform/store/schema.ts (what the IAM policies of the roles name)."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}

output "index_arns" {
  description = "ARN of every global secondary index, per table key and index name (IAM policies name indexes one by one, never with a wildcard)."
  value = {
    for k, t in aws_dynamodb_table.this : k => {
      for ix in local.schema_tables[k].global_secondary_indexes : ix.name => "${t.arn}/index/${ix.name}"
    }
  }
}

output "table_prefix" {
  description = "Prefix of every table name (FLEETGATE_TABLE_PREFIX)."
  value       = var.table_prefix
}
