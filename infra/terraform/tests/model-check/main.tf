################################################################################
# A check shared by the examples' `terraform test` files (their tests/plan.tftest.hcl run it
# after planning the example): the sizing the example plans against what the capacity model
# computes for the same fleet (tests/capacity.expected.json, written by `npm run capacity --
# --write`), key by key, and the headroom the model promises where the sizing reports it.
# No resources, no provider: only values.
################################################################################

locals {
  mismatches = {
    for key, want in var.expected : key => { model = want, planned = try(var.sizing[key], null) }
    if try(var.sizing[key], null) != want
  }

  # Gateway sizings: at the planned load a gateway is under its autoscaling target, and it stays
  # under the model's CPU target with a zone lost. (A load fleet's sizing has neither figure.)
  headroom_problems = concat(
    try(var.sizing.agents_per_gateway_expected > var.sizing.planned_agents_per_gateway, false) ? ["the gateways start above the autoscaling target"] : [],
    try(var.sizing.zone_loss_cpu_share > var.zone_loss_cpu_limit, false) ? ["with a zone lost the gateways pass the model's CPU target"] : [],
  )
}
