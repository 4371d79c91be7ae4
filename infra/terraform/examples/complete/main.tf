################################################################################
# A complete deployment for a fleet of 10,000 agents, with every default: three zones, three
# Fargate gateways (1 vCPU, 2 GiB, sized by the capacity model), three MSK brokers, on-demand
# tables, discovery on Lambda, the manager API private.
################################################################################

provider "aws" {
  region = var.region
}

module "fleetgate" {
  source = "../.."

  name = "fleetgate"
  azs  = var.azs

  expected_agents   = 10000
  gateway_image     = var.gateway_image
  agent_cidr_blocks = var.agent_cidr_blocks
  alarm_emails      = var.alarm_emails

  # Built by `npm run build:lambda` at the repository's root.
  discovery_package_path  = "${path.root}/../../../../dist/lambda/discovery.zip"
  manager_package_path    = "${path.root}/../../../../dist/lambda/manager.zip"
  dispatcher_package_path = "${path.root}/../../../../dist/lambda/dispatcher.zip"

  tags = {
    Project = "fleetgate"
  }
}
