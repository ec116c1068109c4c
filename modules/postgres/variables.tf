variable "identifier" {
  type        = string
  description = "Identifier of the RDS instance (also names its subnet group, security group, parameter group and final snapshot). Lowercase letters, digits and hyphens, starting with a letter, at most 50 characters, no double or trailing hyphen."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,49}$", var.identifier)) && !strcontains(var.identifier, "--") && !endswith(var.identifier, "-")
    error_message = "identifier must start with a lowercase letter, contain only lowercase letters, digits and single hyphens, not end with a hyphen, and be at most 50 characters."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the database runs in."
  nullable    = false

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8}([0-9a-f]{9})?$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the DB subnet group, in at least two availability zones (RDS requires two even for a Single-AZ instance)."
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8}([0-9a-f]{9})?$", s))])
    error_message = "subnet_ids must list at least two subnet IDs (subnet-...) in different availability zones."
  }
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL version: a major version such as \"16\" (RDS picks the default minor version and upgrades minors in the maintenance window) or a full version such as \"16.6\". A major upgrade is a planned change: it needs allow_major_version_upgrade."
  default     = "16"
  nullable    = false

  validation {
    condition     = can(regex("^1[2-9](\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be a PostgreSQL version from 12 on, as \"16\" or \"16.6\"."
  }
}

variable "allow_major_version_upgrade" {
  type        = bool
  description = "Allow a change of engine_version to a new major version."
  default     = false
  nullable    = false
}

variable "instance_class" {
  type        = string
  description = "RDS instance class, for example db.t4g.micro (burstable; development), db.m7g.large or db.r7g.large (production). Billed per instance-hour, twice with multi_az."
  default     = "db.t4g.micro"
  nullable    = false

  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must look like db.<family>.<size>, for example db.t4g.micro."
  }
}

variable "allocated_storage" {
  type        = number
  description = "Storage in GiB, 20 to 65536. Billed per GB-month (twice with multi_az). Storage can grow later but never shrink."
  default     = 20
  nullable    = false

  validation {
    condition     = var.allocated_storage >= 20 && var.allocated_storage <= 65536 && floor(var.allocated_storage) == var.allocated_storage
    error_message = "allocated_storage must be a whole number of GiB from 20 to 65536."
  }
}

variable "max_allocated_storage" {
  type        = number
  description = "Upper limit in GiB for storage autoscaling; 0 disables autoscaling. When set it must be at least allocated_storage."
  default     = 0
  nullable    = false

  validation {
    condition     = var.max_allocated_storage == 0 || (var.max_allocated_storage >= 20 && var.max_allocated_storage <= 65536 && floor(var.max_allocated_storage) == var.max_allocated_storage)
    error_message = "max_allocated_storage must be 0 or a whole number of GiB from 20 to 65536."
  }
}

variable "storage_type" {
  type        = string
  description = "Storage type: gp3 (general purpose SSD; the default), io1 or io2 (provisioned IOPS, needs iops)."
  default     = "gp3"
  nullable    = false

  validation {
    condition     = contains(["gp3", "io1", "io2"], var.storage_type)
    error_message = "storage_type must be one of: gp3, io1, io2."
  }
}

variable "iops" {
  type        = number
  description = "Provisioned IOPS. Required for io1/io2. For gp3 only allowed from 400 GiB of storage (below that the baseline is 3000 IOPS); IOPS above the baseline are billed per IOPS-month. Null means the baseline."
  default     = null

  validation {
    condition     = var.iops == null || try(var.iops >= 1000 && floor(var.iops) == var.iops, false)
    error_message = "iops must be null or a whole number of at least 1000."
  }
}

variable "storage_throughput" {
  type        = number
  description = "gp3 throughput in MiB/s, only from 400 GiB of storage (baseline 500 MiB/s there, 125 MiB/s below); throughput above the baseline is billed. Null means the baseline."
  default     = null

  validation {
    condition     = var.storage_throughput == null || try(var.storage_throughput >= 125 && floor(var.storage_throughput) == var.storage_throughput, false)
    error_message = "storage_throughput must be null or a whole number of MiB/s, at least 125."
  }
}

variable "multi_az" {
  type        = bool
  description = "Run a synchronous standby in a second availability zone with automatic failover. Doubles the instance and storage cost."
  default     = false
  nullable    = false
}

variable "database_name" {
  type        = string
  description = "Name of the database created in the instance."
  default     = "app"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name)) && !contains(["postgres", "template0", "template1", "rdsadmin"], var.database_name)
    error_message = "database_name must start with a lowercase letter, contain only lowercase letters, digits and underscores, be at most 63 characters, and not be a reserved name (postgres, template0, template1, rdsadmin)."
  }
}

variable "master_username" {
  type        = string
  description = "Name of the master user. Its password is generated and rotated by RDS in AWS Secrets Manager (see master_user_secret_arn); no password ever passes through Terraform."
  default     = "dbadmin"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["rdsadmin", "rdsrepladmin", "rds_superuser", "rds_replication", "rds_iam"], var.master_username) && !startswith(var.master_username, "pg_")
    error_message = "master_username must start with a lowercase letter, contain only lowercase letters, digits and underscores, be at most 63 characters, and not start with pg_ or be a reserved RDS role (rdsadmin, rdsrepladmin, rds_superuser, rds_replication, rds_iam)."
  }
}

variable "master_user_secret_kms_key_id" {
  type        = string
  description = "KMS key (ARN, ID or alias) that encrypts the master user secret in Secrets Manager. Null means the account's aws/secretsmanager key."
  default     = null
}

variable "kms_key_id" {
  type        = string
  description = "ARN of the KMS key that encrypts storage and snapshots. Null means the account's aws/rds key. Storage is always encrypted."
  default     = null

  validation {
    condition     = var.kms_key_id == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_id))
    error_message = "kms_key_id must be null or a KMS key ARN."
  }
}

variable "port" {
  type        = number
  description = "TCP port PostgreSQL listens on."
  default     = 5432
  nullable    = false

  validation {
    condition     = var.port >= 1150 && var.port <= 65535 && floor(var.port) == var.port
    error_message = "port must be a whole number from 1150 to 65535."
  }
}

variable "allowed_security_group_ids" {
  type        = list(string)
  description = "Security groups whose members may connect on port (for example the web-service module's service_security_group_id output)."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for g in var.allowed_security_group_ids : can(regex("^sg-[0-9a-f]{8}([0-9a-f]{9})?$", g))])
    error_message = "allowed_security_group_ids must contain only security group IDs (sg-...)."
  }
}

variable "allowed_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks that may connect on port (for example a VPN range). The instance is never publicly accessible, whatever is listed here."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.allowed_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must contain only valid IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "backup_retention_period" {
  type        = number
  description = "Days to keep automated backups (point-in-time recovery), 1 to 35. Backup storage up to the size of the database is free; beyond that it is billed per GB-month."
  default     = 7
  nullable    = false

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35 && floor(var.backup_retention_period) == var.backup_retention_period
    error_message = "backup_retention_period must be a whole number of days from 1 to 35 (backups cannot be turned off with this module)."
  }
}

variable "backup_window" {
  type        = string
  description = "Daily UTC window for automated backups, as hh24:mi-hh24:mi (at least 30 minutes, not overlapping maintenance_window). Null lets RDS choose."
  default     = null

  validation {
    condition     = var.backup_window == null || can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_window))
    error_message = "backup_window must be null or hh24:mi-hh24:mi in UTC, for example 03:00-03:30."
  }
}

variable "maintenance_window" {
  type        = string
  description = "Weekly UTC maintenance window, as ddd:hh24:mi-ddd:hh24:mi (for example sun:04:00-sun:05:00). Null lets RDS choose."
  default     = null

  validation {
    condition     = var.maintenance_window == null || can(regex("^(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]$", var.maintenance_window))
    error_message = "maintenance_window must be null or ddd:hh24:mi-ddd:hh24:mi in UTC, for example sun:04:00-sun:05:00."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the instance from deletion: a destroy fails until this is set to false and applied. On by default."
  default     = true
  nullable    = false
}

variable "skip_final_snapshot" {
  type        = bool
  description = "Delete the instance without a final snapshot. Off by default: a destroy keeps \"<identifier>-final\" (billed as snapshot storage until deleted; delete it before re-creating and destroying an instance with the same identifier)."
  default     = false
  nullable    = false
}

variable "apply_immediately" {
  type        = bool
  description = "Apply modifications (instance class, storage, parameters) at once instead of in the next maintenance window; some cause a restart."
  default     = false
  nullable    = false
}

variable "parameters" {
  type = list(object({
    name         = string
    value        = string
    apply_method = optional(string, "immediate")
  }))
  description = "PostgreSQL parameters for the instance's parameter group, on top of rds.force_ssl = 1 which the module always sets. Use apply_method \"pending-reboot\" for static parameters."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for p in var.parameters : contains(["immediate", "pending-reboot"], p.apply_method) && p.name != "rds.force_ssl"])
    error_message = "Each parameter's apply_method must be immediate or pending-reboot, and rds.force_ssl cannot be overridden."
  }
}

variable "performance_insights_enabled" {
  type        = bool
  description = "Enable Performance Insights (7 days of history are free; longer retention is billed per vCPU-month)."
  default     = false
  nullable    = false
}

variable "cloudwatch_logs_exports" {
  type        = list(string)
  description = "Logs to publish to CloudWatch Logs: postgresql and/or upgrade (billed per GB ingested and stored)."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for l in var.cloudwatch_logs_exports : contains(["postgresql", "upgrade"], l)])
    error_message = "cloudwatch_logs_exports may contain only postgresql and upgrade."
  }
}

variable "iam_database_authentication_enabled" {
  type        = bool
  description = "Allow logging in with IAM authentication tokens in addition to passwords."
  default     = false
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource, on top of the provider's default_tags (also copied to snapshots)."
  default     = {}
  nullable    = false
}
