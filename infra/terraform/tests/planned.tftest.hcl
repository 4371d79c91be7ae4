# `terraform test` on the root module with the real AWS provider (no credentials, no network:
# plan only): its own argument checks and the policy documents it computes locally run as in a
# deployment. What would call AWS at plan time (caller identity, the DynamoDB prefix list) is
# overridden, and so are the identifiers AWS assigns at creation that the policies, the task
# definition and the functions' environment are built from (table, secret, key and broker
# addresses), so the plan holds them as known values.
#
# test/integration/infra-terraform.test.ts runs this file with -json -verbose and checks the
# planned values against the code: the tables against platform/store/schema.ts, the functions
# against the bundles scripts/build-lambda.mjs builds (which it invokes), the IAM policies
# against what those bundles send to DynamoDB, the gateway task's environment against
# docs/environment.md.
provider "aws" {
  # checkov:skip=CKV_AWS_41:Not credentials: AWS's documented example key pair, for a plan that never leaves the machine (no endpoint is called).
  region                      = "eu-west-1"
  access_key                  = "AKIAIOSFODNN7EXAMPLE"
  secret_key                  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variables {
  gateway_image           = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0"
  agent_cidr_blocks       = ["10.64.0.0/10"]
  azs                     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  expected_agents         = 100000
  load_balancer_internal  = true
  discovery_package_path  = "../../dist/lambda/discovery.zip"
  manager_package_path    = "../../dist/lambda/manager.zip"
  dispatcher_package_path = "../../dist/lambda/dispatcher.zip"
}

override_data {
  target = data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}

override_data {
  target = module.gateways.data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}

override_data {
  target = module.discovery.module.function.data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}

override_data {
  target = module.manager.module.api.data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}

override_data {
  target = module.manager.module.dispatcher.data.aws_caller_identity.current
  values = { account_id = "123456789012" }
}

override_data {
  target = module.discovery.module.function.data.aws_ec2_managed_prefix_list.dynamodb
  values = { id = "pl-6ea54007" }
}

override_data {
  target = module.manager.module.api.data.aws_ec2_managed_prefix_list.dynamodb
  values = { id = "pl-6ea54007" }
}

override_data {
  target = module.manager.module.dispatcher.data.aws_ec2_managed_prefix_list.dynamodb
  values = { id = "pl-6ea54007" }
}

override_resource {
  target          = aws_kms_key.this
  override_during = plan
  values          = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["registry"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-registry" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["agents"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-agents" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["tags"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-tags" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["configs"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-configs" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["tasks"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-tasks" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["subtasks"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-subtasks" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["chunks"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-chunks" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["users"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-users" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["apikeys"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-apikeys" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["audit"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-audit" }
}

override_resource {
  target          = module.tables.aws_dynamodb_table.this["connections"]
  override_during = plan
  values          = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/fleetgate-connections" }
}

override_resource {
  target          = module.secrets.aws_secretsmanager_secret.this["pki"]
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/pki-AbCdEf" }
}

override_resource {
  target          = module.secrets.aws_secretsmanager_secret.this["aksk"]
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/aksk-AbCdEf" }
}

override_resource {
  target          = module.secrets.aws_secretsmanager_secret.this["manager"]
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/manager-AbCdEf" }
}

override_resource {
  target          = module.kafka.aws_msk_cluster.this
  override_during = plan
  values = {
    arn                   = "arn:aws:kafka:eu-west-1:123456789012:cluster/fleetgate/00000000-0000-0000-0000-000000000000-1"
    bootstrap_brokers_tls = "b-1.fleetgate.kafka.eu-west-1.amazonaws.com:9094,b-2.fleetgate.kafka.eu-west-1.amazonaws.com:9094"
  }
}

override_resource {
  target          = module.discovery.module.function.aws_apigatewayv2_api.this
  override_during = plan
  values = {
    id            = "abcdef1234"
    api_endpoint  = "https://abcdef1234.execute-api.eu-west-1.amazonaws.com"
    execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234"
  }
}

# Agents inside the network (load_balancer_internal): discovery's 8088 balancer exists.
run "internal_agents" {
  command = plan
}

# Two gateway processes per 2-vCPU task (FLEETGATE_PROCESSES): the task's connection limit, ingest
# workers, control ports, metric scrapes, autoscaling target and alarms shared between them.
run "two_gateway_processes" {
  command = plan

  variables {
    gateway_cpu       = 2048
    gateway_processes = 2
  }
}
