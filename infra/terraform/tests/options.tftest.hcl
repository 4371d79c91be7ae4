# `terraform test` on the root module (npm run check:infra): its options plan as documented, with
# a mocked AWS provider (no credentials, no calls).
mock_provider "aws" {
  source = "./mocks"
}

variables {
  gateway_image           = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetgate:0.1.0"
  agent_cidr_blocks       = ["10.64.0.0/10"]
  azs                     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  expected_agents         = 100000
  discovery_package_path  = "../../dist/lambda/discovery.zip"
  manager_package_path    = "../../dist/lambda/manager.zip"
  dispatcher_package_path = "../../dist/lambda/dispatcher.zip"
}

# Internet-facing agents (the default): the gateways still register, so the manager's rebalance
# and load control see them; no public discovery balancer hands out private addresses; the
# manager API is private.
run "internet_facing_defaults" {
  command = plan

  assert {
    condition     = length(output.gateway_discovery_addrs) == 1
    error_message = "the gateways register with discovery in internet-facing mode too"
  }
  assert {
    condition     = output.discovery_http_address == ""
    error_message = "no public 8088 discovery balancer by default when agents come from the internet"
  }
  assert {
    condition     = startswith(output.manager_url, "http://")
    error_message = "without a certificate the manager API is plain HTTP on its internal balancer"
  }
  assert {
    condition     = length(output.nat_public_ips) == 3
    error_message = "the created VPC has a NAT gateway per zone"
  }
}

# Agents inside the network: discovery's 8088 balancer exists (internal).
run "internal_agents_get_discovery" {
  command = plan

  variables {
    load_balancer_internal = true
  }

  assert {
    condition     = endswith(output.discovery_http_address, ":8088")
    error_message = "agents that route into the VPC ask discovery on 8088"
  }
}

# The public manager option: HTTPS with a certificate, from an allowlist.
run "public_manager_with_allowlist" {
  command = plan

  variables {
    manager_access              = "public"
    manager_allowed_cidr_blocks = ["198.51.100.0/24"]
    manager_certificate_arn     = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = startswith(output.manager_url, "https://")
    error_message = "the public manager API answers HTTPS only"
  }
}

run "public_manager_needs_a_certificate_and_an_allowlist" {
  command = plan

  variables {
    manager_access = "public"
  }

  expect_failures = [
    var.manager_certificate_arn,
    var.manager_allowed_cidr_blocks,
  ]
}

run "public_manager_refuses_the_whole_internet" {
  command = plan

  variables {
    manager_access              = "public"
    manager_allowed_cidr_blocks = ["0.0.0.0/0"]
    manager_certificate_arn     = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  expect_failures = [
    var.manager_allowed_cidr_blocks,
  ]
}

# Kafka client authentication (MSK TLS with an ACM Private CA): plans with the gateways'
# client certificate wired in.
run "kafka_client_authentication" {
  command = plan

  variables {
    kafka_client_ca_arns = ["arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"]
  }

  assert {
    condition     = startswith(output.kafka_bootstrap_brokers, "") && output.sizing.kafka_partitions >= 12
    error_message = "the deployment plans with Kafka client authentication"
  }
}

# An existing VPC: nothing of modules/network is created, its subnets carry everything.
run "existing_vpc" {
  command = plan

  variables {
    existing_vpc = {
      vpc_id             = "vpc-0123456789abcdef0"
      cidr_block         = "10.20.0.0/16"
      private_subnet_ids = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
      public_subnet_ids  = ["subnet-0000000000000000d", "subnet-0000000000000000e", "subnet-0000000000000000f"]
    }
  }

  assert {
    condition     = length(output.nat_public_ips) == 0
    error_message = "no NAT gateway is created in an existing VPC"
  }
}

# A gateway process is an event loop: no more processes than the task has vCPUs.
run "gateway_processes_need_a_vcpu_each" {
  command = plan

  variables {
    gateway_cpu       = 1024
    gateway_processes = 2
  }

  expect_failures = [
    var.gateway_processes,
  ]
}
