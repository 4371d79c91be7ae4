# `terraform test` (node infra/tools.mjs test): the example plans with a mocked AWS provider,
# with the sizing of capacity.auto.tfvars.json.
mock_provider "aws" {
  source = "../../mocks"
}

variables {
  gateway_image     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0"
  agent_cidr_blocks = ["10.64.0.0/10"]
}

run "plans" {
  command = plan
}
