# An RDS for PostgreSQL instance in private subnets: encrypted storage (gp3 by default),
# TLS enforced, automated backups, deletion protection, and a master password that RDS
# generates and keeps in Secrets Manager -- no password is an input, and none is in state.

locals {
  major_version = split(".", var.engine_version)[0]
  gp3_baseline  = var.storage_type == "gp3" && var.allocated_storage < 400
}

resource "aws_db_subnet_group" "this" {
  name        = var.identifier
  description = "Subnets of the ${var.identifier} PostgreSQL instance"
  subnet_ids  = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.identifier}-db-"
  description = "PostgreSQL instance ${var.identifier}"
  vpc_id      = var.vpc_id

  # No egress rules: the database initiates no connections.
  tags = merge(var.tags, { Name = "${var.identifier}-db" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "from_security_group" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from ${each.value}"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_cidr" {
  for_each = toset(var.allowed_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "PostgreSQL from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
  cidr_ipv4         = each.value

  tags = var.tags
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.identifier}-pg${local.major_version}-"
  family      = "postgres${local.major_version}"
  description = "PostgreSQL ${local.major_version} parameters of ${var.identifier}"

  # Refuse unencrypted client connections.
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "immediate"
  }

  dynamic "parameter" {
    for_each = var.parameters

    content {
      name         = parameter.value.name
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  tags = var.tags

  # A major version upgrade needs a parameter group of the new family before the old one
  # can be released by the instance.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage > 0 ? var.max_allocated_storage : null
  storage_type          = var.storage_type
  iops                  = var.iops
  storage_throughput    = var.storage_throughput
  storage_encrypted     = true
  kms_key_id            = var.kms_key_id

  db_name                       = var.database_name
  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.master_user_secret_kms_key_id
  port                          = var.port

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name

  iam_database_authentication_enabled = var.iam_database_authentication_enabled
  performance_insights_enabled        = var.performance_insights_enabled
  enabled_cloudwatch_logs_exports     = var.cloudwatch_logs_exports

  backup_retention_period   = var.backup_retention_period
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.identifier}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = var.allow_major_version_upgrade
  apply_immediately           = var.apply_immediately

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.max_allocated_storage == 0 || var.max_allocated_storage >= var.allocated_storage
      error_message = "max_allocated_storage must be 0 (no autoscaling) or at least allocated_storage."
    }
    precondition {
      condition     = !contains(["io1", "io2"], var.storage_type) || var.iops != null
      error_message = "storage_type io1 and io2 need iops."
    }
    precondition {
      condition     = !local.gp3_baseline || (var.iops == null && var.storage_throughput == null)
      error_message = "gp3 below 400 GiB has fixed baseline performance (3000 IOPS, 125 MiB/s): leave iops and storage_throughput null, or allocate at least 400 GiB."
    }
    precondition {
      condition     = var.storage_throughput == null || var.storage_type == "gp3"
      error_message = "storage_throughput can only be set with storage_type gp3."
    }
  }
}
