output "mismatches" {
  description = "Sizing keys whose planned value differs from the model's: key => { model, planned }."
  value       = local.mismatches
}

output "headroom_problems" {
  description = "Where the planned sizing leaves less headroom than the model promises (empty when none)."
  value       = local.headroom_problems
}
