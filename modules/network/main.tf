# A VPC with one public and one private subnet per availability zone, an internet gateway
# for the public subnets and, depending on nat_gateway_mode, one shared NAT gateway or one
# per zone for the private subnets.

data "aws_availability_zones" "available" {
  count = length(var.availability_zones) == 0 ? 1 : 0

  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.az_count
      error_message = "The region has fewer available availability zones (that need no opt-in) than az_count."
    }
  }
}

locals {
  # The number of zones is known at plan time (it never depends on the data source), so
  # resource counts -- and therefore plans and cost estimates -- are fully known.
  az_count = length(var.availability_zones) > 0 ? length(var.availability_zones) : var.az_count
  azs      = length(var.availability_zones) > 0 ? var.availability_zones : slice(data.aws_availability_zones.available[0].names, 0, var.az_count)

  # Public subnets take netnums 0..n-1, private subnets start half-way through the range,
  # so adding a zone later never renumbers an existing subnet.
  private_netnum_offset = pow(2, var.subnet_newbits - 1)

  public_subnet_cidrs = length(var.public_subnet_cidrs) > 0 ? var.public_subnet_cidrs : [
    for i in range(local.az_count) : cidrsubnet(var.cidr_block, var.subnet_newbits, i)
  ]
  private_subnet_cidrs = length(var.private_subnet_cidrs) > 0 ? var.private_subnet_cidrs : [
    for i in range(local.az_count) : cidrsubnet(var.cidr_block, var.subnet_newbits, local.private_netnum_offset + i)
  ]

  nat_gateway_count = {
    none       = 0
    single     = 1
    one_per_az = local.az_count
  }[var.nat_gateway_mode]
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = var.enable_dns_hostnames

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    precondition {
      condition     = length(var.public_subnet_cidrs) == 0 || length(var.public_subnet_cidrs) == local.az_count
      error_message = "public_subnet_cidrs must be empty or have exactly one CIDR block per availability zone."
    }
    precondition {
      condition     = length(var.private_subnet_cidrs) == 0 || length(var.private_subnet_cidrs) == local.az_count
      error_message = "private_subnet_cidrs must be empty or have exactly one CIDR block per availability zone."
    }
    precondition {
      condition     = local.az_count <= local.private_netnum_offset
      error_message = "subnet_newbits is too small for this many availability zones; increase it or give the subnet CIDRs explicitly."
    }
    precondition {
      condition     = tonumber(split("/", var.cidr_block)[1]) + var.subnet_newbits <= 28
      error_message = "cidr_block prefix plus subnet_newbits must be at most /28, the smallest subnet AWS allows."
    }
  }
}

# Take over the VPC's default security group and strip all its rules, so nothing can use
# it by accident (AWS Security Hub control EC2.2).
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-default-deny-all" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = local.az_count

  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = var.map_public_ip_on_launch

  tags = merge(var.tags, {
    Name = "${var.name}-public-${local.azs[count.index]}"
    Tier = "public"
  })
}

resource "aws_subnet" "private" {
  count = local.az_count

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_subnet_cidrs[count.index]
  availability_zone = local.azs[count.index]

  tags = merge(var.tags, {
    Name = "${var.name}-private-${local.azs[count.index]}"
    Tier = "private"
  })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = local.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = local.nat_gateway_count

  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.name}-nat-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_gateway_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = merge(var.tags, { Name = "${var.name}-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

# One route table per zone, whatever the NAT mode, so switching between "single" and
# "one_per_az" only changes routes, never subnet associations.
resource "aws_route_table" "private" {
  count = local.az_count

  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}" })
}

resource "aws_route" "private_nat" {
  count = local.nat_gateway_count > 0 ? local.az_count : 0

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.nat_gateway_mode == "single" ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = local.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}
