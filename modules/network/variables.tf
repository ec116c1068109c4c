variable "name" {
  type        = string
  description = "Name of the network, used in the Name tag of every resource. Lowercase letters, digits and hyphens, starting with a letter, at most 32 characters."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name))
    error_message = "name must start with a lowercase letter and contain only lowercase letters, digits and hyphens, at most 32 characters."
  }
}

variable "cidr_block" {
  type        = string
  description = "IPv4 CIDR block of the VPC, between /16 and /24 (for example 10.0.0.0/16)."
  default     = "10.0.0.0/16"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && try(tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 24, false)
    error_message = "cidr_block must be a valid IPv4 CIDR block with a prefix length from /16 to /24."
  }
}

variable "az_count" {
  type        = number
  description = "Number of availability zones to spread subnets across, 1 to 6. Ignored when availability_zones is set. Use at least 2 for anything that needs high availability (an ALB or a Multi-AZ RDS instance needs subnets in 2 zones)."
  default     = 2
  nullable    = false

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 1 to 6."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zone names to use (for example [\"eu-west-1a\", \"eu-west-1b\"]). Empty means the first az_count zones of the region that need no opt-in."
  default     = []
  nullable    = false

  validation {
    condition     = length(var.availability_zones) <= 6 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must list at most 6 distinct zones."
  }
}

variable "subnet_newbits" {
  type        = number
  description = "Bits added to the VPC prefix for each automatically sized subnet (a /16 VPC with 4 gives /20 subnets of 4096 addresses). Public subnets take the first netnums, private subnets start half-way through the range. Ignored for subnets whose CIDRs are given explicitly."
  default     = 4
  nullable    = false

  validation {
    condition     = var.subnet_newbits >= 2 && var.subnet_newbits <= 8 && floor(var.subnet_newbits) == var.subnet_newbits
    error_message = "subnet_newbits must be a whole number from 2 to 8."
  }
}

variable "public_subnet_cidrs" {
  type        = list(string)
  description = "Explicit CIDR blocks for the public subnets, one per availability zone in order. Empty means derive them from cidr_block with subnet_newbits."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.public_subnet_cidrs : can(cidrhost(c, 0))])
    error_message = "public_subnet_cidrs must contain only valid IPv4 CIDR blocks."
  }
}

variable "private_subnet_cidrs" {
  type        = list(string)
  description = "Explicit CIDR blocks for the private subnets, one per availability zone in order. Empty means derive them from cidr_block with subnet_newbits."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.private_subnet_cidrs : can(cidrhost(c, 0))])
    error_message = "private_subnet_cidrs must contain only valid IPv4 CIDR blocks."
  }
}

variable "nat_gateway_mode" {
  type        = string
  description = "Outbound internet access for private subnets: \"single\" (one NAT gateway shared by all zones; cheapest, but a zone outage cuts egress for all), \"one_per_az\" (one NAT gateway per zone; highly available, one gateway bill per zone), or \"none\" (private subnets have no internet route)."
  default     = "single"
  nullable    = false

  validation {
    condition     = contains(["single", "one_per_az", "none"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be one of: single, one_per_az, none."
  }
}

variable "map_public_ip_on_launch" {
  type        = bool
  description = "Whether instances launched in the public subnets get a public IPv4 address automatically. Off by default: public IPv4 addresses are billed hourly and should be asked for explicitly."
  default     = false
  nullable    = false
}

variable "enable_dns_hostnames" {
  type        = bool
  description = "Whether instances with a public IP address get public DNS hostnames; also required for the private DNS names of interface VPC endpoints."
  default     = true
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource, on top of the provider's default_tags."
  default     = {}
  nullable    = false
}
