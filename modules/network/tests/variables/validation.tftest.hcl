# Input validation of the network module, checked against variables.tf alone: the full
# module needs the AWS provider, which cannot be installed here. Run with
# modules/test-variables.sh (it copies variables.tf and this file into a scratch directory).

variables {
  name = "n1"
}

run "accepts_defaults" {
  command = plan
}

run "rejects_vpc_larger_than_16" {
  command = plan

  variables {
    cidr_block = "10.0.0.0/8"
  }

  expect_failures = [var.cidr_block]
}

run "rejects_invalid_cidr" {
  command = plan

  variables {
    cidr_block = "nope"
  }

  expect_failures = [var.cidr_block]
}

run "rejects_unknown_nat_mode" {
  command = plan

  variables {
    nat_gateway_mode = "two"
  }

  expect_failures = [var.nat_gateway_mode]
}

run "rejects_seven_zones" {
  command = plan

  variables {
    az_count = 7
  }

  expect_failures = [var.az_count]
}

run "rejects_duplicate_zones" {
  command = plan

  variables {
    availability_zones = ["a", "a"]
  }

  expect_failures = [var.availability_zones]
}

run "rejects_uppercase_name" {
  command = plan

  variables {
    name = "Bad"
  }

  expect_failures = [var.name]
}

run "rejects_invalid_subnet_cidr" {
  command = plan

  variables {
    public_subnet_cidrs = ["10.0.0.0/24", "x"]
  }

  expect_failures = [var.public_subnet_cidrs]
}

run "rejects_one_newbit" {
  command = plan

  variables {
    subnet_newbits = 1
  }

  expect_failures = [var.subnet_newbits]
}

run "rejects_invalid_private_subnet_cidr" {
  command = plan

  variables {
    private_subnet_cidrs = ["x"]
  }

  expect_failures = [var.private_subnet_cidrs]
}

run "accepts_explicit_zones_and_subnets" {
  command = plan

  variables {
    availability_zones   = ["eu-west-1a", "eu-west-1b"]
    public_subnet_cidrs  = ["10.0.0.0/24", "10.0.1.0/24"]
    private_subnet_cidrs = ["10.0.10.0/24", "10.0.11.0/24"]
    nat_gateway_mode     = "one_per_az"
  }
}
