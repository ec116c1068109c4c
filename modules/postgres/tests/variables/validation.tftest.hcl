# Input validation of the postgres module, checked against variables.tf alone: the full
# module needs the AWS provider, which cannot be installed here. Run with
# modules/test-variables.sh (it copies variables.tf and this file into a scratch directory).

variables {
  identifier = "db1"
  vpc_id     = "vpc-0123456789abcdef0"
  subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
}

run "accepts_defaults" {
  command = plan
}

run "accepts_full_engine_version" {
  command = plan

  variables {
    engine_version = "16.6"
  }
}

run "rejects_old_engine_version" {
  command = plan

  variables {
    engine_version = "9.6"
  }

  expect_failures = [var.engine_version]
}

run "rejects_iops_below_1000" {
  command = plan

  variables {
    iops = 500
  }

  expect_failures = [var.iops]
}

run "accepts_iops_3000" {
  command = plan

  variables {
    iops = 3000
  }
}

run "rejects_single_subnet" {
  command = plan

  variables {
    subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
  }

  expect_failures = [var.subnet_ids]
}

run "rejects_reserved_database_name" {
  command = plan

  variables {
    database_name = "postgres"
  }

  expect_failures = [var.database_name]
}

run "rejects_reserved_username" {
  command = plan

  variables {
    master_username = "rdsadmin"
  }

  expect_failures = [var.master_username]
}

run "rejects_pg_prefixed_username" {
  command = plan

  variables {
    master_username = "pg_x"
  }

  expect_failures = [var.master_username]
}

run "rejects_access_from_anywhere" {
  command = plan

  variables {
    allowed_cidr_blocks = ["0.0.0.0/0"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "rejects_disabled_backups" {
  command = plan

  variables {
    backup_retention_period = 0
  }

  expect_failures = [var.backup_retention_period]
}

run "accepts_windows" {
  command = plan

  variables {
    maintenance_window = "sun:04:00-sun:05:00"
    backup_window      = "03:00-03:30"
  }
}

run "rejects_malformed_backup_window" {
  command = plan

  variables {
    backup_window = "3-4"
  }

  expect_failures = [var.backup_window]
}

run "accepts_extra_parameter" {
  command = plan

  variables {
    parameters = [{ name = "log_min_duration_statement", value = "500" }]
  }
}

run "rejects_overriding_force_ssl" {
  command = plan

  variables {
    parameters = [{ name = "rds.force_ssl", value = "0" }]
  }

  expect_failures = [var.parameters]
}

run "rejects_double_hyphen_identifier" {
  command = plan

  variables {
    identifier = "a--b"
  }

  expect_failures = [var.identifier]
}

run "rejects_malformed_vpc_id" {
  command = plan

  variables {
    vpc_id = "vpc-xyz"
  }

  expect_failures = [var.vpc_id]
}

run "rejects_class_without_db_prefix" {
  command = plan

  variables {
    instance_class = "t4g.micro"
  }

  expect_failures = [var.instance_class]
}

run "rejects_storage_below_20" {
  command = plan

  variables {
    allocated_storage = 10
  }

  expect_failures = [var.allocated_storage]
}

run "rejects_max_storage_below_20" {
  command = plan

  variables {
    max_allocated_storage = 10
  }

  expect_failures = [var.max_allocated_storage]
}

run "rejects_gp2" {
  command = plan

  variables {
    storage_type = "gp2"
  }

  expect_failures = [var.storage_type]
}

run "rejects_throughput_below_125" {
  command = plan

  variables {
    storage_throughput = 100
  }

  expect_failures = [var.storage_throughput]
}

run "rejects_kms_key_that_is_not_an_arn" {
  command = plan

  variables {
    kms_key_id = "alias/rds"
  }

  expect_failures = [var.kms_key_id]
}

run "rejects_privileged_port" {
  command = plan

  variables {
    port = 80
  }

  expect_failures = [var.port]
}

run "rejects_malformed_security_group" {
  command = plan

  variables {
    allowed_security_group_ids = ["web"]
  }

  expect_failures = [var.allowed_security_group_ids]
}

run "rejects_malformed_maintenance_window" {
  command = plan

  variables {
    maintenance_window = "sunday"
  }

  expect_failures = [var.maintenance_window]
}

run "rejects_unknown_log_export" {
  command = plan

  variables {
    cloudwatch_logs_exports = ["audit"]
  }

  expect_failures = [var.cloudwatch_logs_exports]
}

run "accepts_production_settings" {
  command = plan

  variables {
    instance_class               = "db.m7g.large"
    multi_az                     = true
    allocated_storage            = 400
    max_allocated_storage        = 1000
    iops                         = 12000
    storage_throughput           = 500
    backup_retention_period      = 14
    cloudwatch_logs_exports      = ["postgresql", "upgrade"]
    performance_insights_enabled = true
  }
}
