# Input validation of the web-service module, checked against variables.tf alone: the full
# module needs the AWS provider, which cannot be installed here. Run with
# modules/test-variables.sh (it copies variables.tf and this file into a scratch directory).

variables {
  name                     = "w1"
  vpc_id                   = "vpc-0123456789abcdef0"
  load_balancer_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  service_subnet_ids       = ["subnet-0aaaaaaaaaaaaaaa1"]
  image                    = "nginx"
}

run "accepts_defaults" {
  command = plan
}

run "rejects_non_fargate_cpu" {
  command = plan

  variables {
    cpu = 300
  }

  expect_failures = [var.cpu]
}

run "rejects_tiny_memory" {
  command = plan

  variables {
    memory = 100
  }

  expect_failures = [var.memory]
}

run "rejects_malformed_vpc_id" {
  command = plan

  variables {
    vpc_id = "vpc-1"
  }

  expect_failures = [var.vpc_id]
}

run "rejects_single_load_balancer_subnet" {
  command = plan

  variables {
    load_balancer_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
  }

  expect_failures = [var.load_balancer_subnet_ids]
}

run "accepts_secrets_manager_json_key" {
  command = plan

  variables {
    secrets = { DB = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:password::" }
  }
}

run "accepts_ssm_parameter" {
  command = plan

  variables {
    secrets = { DB = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db" }
  }
}

run "rejects_plaintext_secret" {
  command = plan

  variables {
    secrets = { DB = "plaintext" }
  }

  expect_failures = [var.secrets]
}

run "rejects_invalid_env_name" {
  command = plan

  variables {
    environment = { "1BAD" = "x" }
  }

  expect_failures = [var.environment]
}

run "rejects_unsupported_retention" {
  command = plan

  variables {
    log_retention_days = 2
  }

  expect_failures = [var.log_retention_days]
}

run "accepts_matcher_list" {
  command = plan

  variables {
    health_check_matcher = "200-299,302"
  }
}

run "rejects_internal_prefix" {
  command = plan

  variables {
    name = "internal-x"
  }

  expect_failures = [var.name]
}

run "rejects_trailing_hyphen" {
  command = plan

  variables {
    name = "x-"
  }

  expect_failures = [var.name]
}

run "rejects_image_with_space" {
  command = plan

  variables {
    image = "a b"
  }

  expect_failures = [var.image]
}

run "rejects_no_service_subnets" {
  command = plan

  variables {
    service_subnet_ids = []
  }

  expect_failures = [var.service_subnet_ids]
}

run "rejects_port_out_of_range" {
  command = plan

  variables {
    container_port = 70000
  }

  expect_failures = [var.container_port]
}

run "rejects_unknown_architecture" {
  command = plan

  variables {
    cpu_architecture = "arm"
  }

  expect_failures = [var.cpu_architecture]
}

run "accepts_arm64" {
  command = plan

  variables {
    cpu_architecture = "ARM64"
    cpu              = 1024
    memory           = 2048
  }
}

run "rejects_too_many_tasks" {
  command = plan

  variables {
    desired_count = 101
  }

  expect_failures = [var.desired_count]
}

run "rejects_relative_health_check_path" {
  command = plan

  variables {
    health_check_path = "health"
  }

  expect_failures = [var.health_check_path]
}

run "rejects_malformed_matcher" {
  command = plan

  variables {
    health_check_matcher = "ok"
  }

  expect_failures = [var.health_check_matcher]
}

run "rejects_negative_grace_period" {
  command = plan

  variables {
    health_check_grace_period_seconds = -1
  }

  expect_failures = [var.health_check_grace_period_seconds]
}

run "rejects_certificate_that_is_not_an_arn" {
  command = plan

  variables {
    certificate_arn = "my-cert"
  }

  expect_failures = [var.certificate_arn]
}

run "rejects_no_ingress_cidrs" {
  command = plan

  variables {
    ingress_cidr_blocks = []
  }

  expect_failures = [var.ingress_cidr_blocks]
}
