output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_arn" {
  description = "ARN of the VPC."
  value       = aws_vpc.this.arn
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "Availability zones used, in the same order as the subnet lists."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per availability zone (for load balancers and NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "public_subnet_cidrs" {
  description = "CIDR blocks of the public subnets."
  value       = aws_subnet.public[*].cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone (for services and databases)."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets."
  value       = aws_subnet.private[*].cidr_block
}

output "internet_gateway_id" {
  description = "ID of the internet gateway."
  value       = aws_internet_gateway.this.id
}

output "nat_gateway_ids" {
  description = "IDs of the NAT gateways (empty when nat_gateway_mode is \"none\")."
  value       = aws_nat_gateway.this[*].id
}

output "nat_public_ips" {
  description = "Public IPv4 addresses of the NAT gateways: the source addresses of the private subnets' internet traffic, for allow-lists elsewhere."
  value       = aws_eip.nat[*].public_ip
}

output "public_route_table_id" {
  description = "ID of the route table of the public subnets."
  value       = aws_route_table.public.id
}

output "private_route_table_ids" {
  description = "IDs of the route tables of the private subnets, one per availability zone (for gateway VPC endpoints)."
  value       = aws_route_table.private[*].id
}
