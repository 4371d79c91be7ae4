output "vpc_id" {
  description = "ID of the VPC."
  value       = try(aws_vpc.this[0].id, "")
}

output "vpc_cidr_block" {
  description = "CIDR of the VPC (the gateways' control API and the brokers accept it)."
  value       = try(aws_vpc.this[0].cidr_block, "")
}

output "private_subnet_ids" {
  description = "Private subnet IDs, one per availability zone, in the order of var.azs."
  value       = [for az in var.azs : try(aws_subnet.private[az].id, "")]
}

output "public_subnet_ids" {
  description = "Public subnet IDs, one per availability zone, in the order of var.azs (for the internet-facing load balancer)."
  value       = [for az in var.azs : try(aws_subnet.public[az].id, "")]
}

output "private_route_table_ids" {
  description = "Route table IDs of the private subnets."
  value       = [for rt in aws_route_table.private : rt.id]
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways (what the outside sees from the gateways and functions)."
  value       = aws_eip.nat[*].public_ip
}
