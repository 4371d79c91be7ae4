# `terraform test` (npm run check:infra, node infra/tools.mjs test): the example plans as a whole
# with a mocked AWS provider (no credentials, no calls), and ../../sizing.tf derives from the
# capacity model's coefficients (../../capacity.tf.json) exactly what the model computes for
# this fleet (capacity.expected.json, written by `npm run capacity -- --write`).
mock_provider "aws" {
  source = "../../mocks"
}

variables {
  gateway_image     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0"
  agent_cidr_blocks = ["10.64.0.0/10"]
}

run "plans_with_the_model_sizing" {
  command = plan

  assert {
    condition     = output.sizing.gateway_max_connections == jsondecode(file("tests/capacity.expected.json")).gateway_max_connections
    error_message = "connection limit ${output.sizing.gateway_max_connections}, the model says ${jsondecode(file("tests/capacity.expected.json")).gateway_max_connections}"
  }
  assert {
    condition     = output.sizing.planned_agents_per_gateway == jsondecode(file("tests/capacity.expected.json")).planned_agents_per_gateway
    error_message = "planned agents per gateway ${output.sizing.planned_agents_per_gateway}, the model says ${jsondecode(file("tests/capacity.expected.json")).planned_agents_per_gateway}"
  }
  assert {
    condition     = output.sizing.gateway_count == jsondecode(file("tests/capacity.expected.json")).gateway_count
    error_message = "gateways ${output.sizing.gateway_count}, the model says ${jsondecode(file("tests/capacity.expected.json")).gateway_count}"
  }
  assert {
    condition     = output.sizing.gateway_max_count == jsondecode(file("tests/capacity.expected.json")).gateway_max_count
    error_message = "autoscaling ceiling ${output.sizing.gateway_max_count}, the model says ${jsondecode(file("tests/capacity.expected.json")).gateway_max_count}"
  }
  assert {
    condition     = output.sizing.agents_table_warm_write_units == jsondecode(file("tests/capacity.expected.json")).agents_table_warm_write_units
    error_message = "agents table warm writes ${output.sizing.agents_table_warm_write_units}, the model says ${jsondecode(file("tests/capacity.expected.json")).agents_table_warm_write_units}"
  }
  # Headroom: at the planned load a gateway is under its limit, and so after a zone is lost.
  assert {
    condition     = output.sizing.agents_per_gateway_expected <= output.sizing.planned_agents_per_gateway
    error_message = "the gateways start above the autoscaling target"
  }
  assert {
    condition     = output.sizing.zone_loss_cpu_share <= 0.61
    error_message = "with a zone lost the gateways pass the model's CPU target"
  }
}
