variable "sizing" {
  description = "The sizing output of the example's plan (run.<plan>.sizing)."
  type        = any
}

variable "expected" {
  description = "What the capacity model computes for the example's fleet: tests/capacity.expected.json, decoded."
  type        = map(number)
}

variable "zone_loss_cpu_limit" {
  description = "The share of one core a gateway may reach with a zone lost (the model's CPU target plus rounding)."
  type        = number
  default     = 0.61
}
