# `terraform test` (npm run check:infra): the load fleet plans with a mocked AWS provider, and
# sizes its simulator processes and tasks as the capacity model does from the measured simulator
# cost (capacity.expected.json, written by `npm run capacity -- --write`).
mock_provider "aws" {
  source = "../../mocks"
}

variables {
  vpc_id          = "vpc-0123456789abcdef0"
  subnet_ids      = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  sim_image       = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0"
  pki_secret_arn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/agent-pki-AbCdEf"
  kms_key_arn     = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  gateway_address = "fleetgate-nlb-0123456789.elb.eu-west-1.amazonaws.com:6751"
  discovery_url   = "http://internal-fleetgate-discovery-http-0123456789.eu-west-1.elb.amazonaws.com:8088"
}

run "million_agents" {
  command = plan

  assert {
    condition     = output.sizing.tasks * output.sizing.agents_per_task >= var.agents
    error_message = "the tasks do not carry every agent"
  }
}

# ../../tests/model-check: the planned sizing, key by key, against the model.
run "sizing_is_the_model" {
  command = plan

  module {
    source = "../../tests/model-check"
  }

  variables {
    sizing   = run.million_agents.sizing
    expected = jsondecode(file("tests/capacity.expected.json"))
  }

  assert {
    condition     = length(output.mismatches) == 0
    error_message = "the plan's sizing differs from the capacity model's: ${jsonencode(output.mismatches)}"
  }
}

# A rate above every measured run: the cost scales with the rate, so more tasks.
run "above_the_measured_rates" {
  command = plan

  variables {
    events_per_agent_per_second = 8
  }

  assert {
    condition     = output.sizing.us_per_agent_s > 200
    error_message = "the simulator's cost at 8 events/s is scaled from the 2 events/s run"
  }
}
