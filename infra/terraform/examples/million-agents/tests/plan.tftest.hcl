# `terraform test` (npm run check:infra, node infra/tools.mjs test): the example plans as a whole
# with a mocked AWS provider (no credentials, no calls), and ../../sizing.tf derives from the
# capacity model's coefficients (../../capacity.tf.json) exactly what the model computes for
# this fleet (capacity.expected.json, written by `npm run capacity -- --write`), checked by
# ../../tests/model-check, which every example's test shares.
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

# ../../tests/model-check: the planned sizing, key by key, against the model, and its headroom.
run "sizing_is_the_model" {
  command = plan

  module {
    source = "../../tests/model-check"
  }

  variables {
    sizing   = run.plans.sizing
    expected = jsondecode(file("tests/capacity.expected.json"))
  }

  assert {
    condition     = length(output.mismatches) == 0
    error_message = "the plan's sizing differs from the capacity model's: ${jsonencode(output.mismatches)}"
  }
  assert {
    condition     = length(output.headroom_problems) == 0
    error_message = join("; ", output.headroom_problems)
  }
}
