variable "name" {
  type        = string
  description = "Name of the service, used for the ECS cluster, service, task family, load balancer and log group. Lowercase letters, digits and hyphens, starting with a letter, at most 28 characters."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name)) && !endswith(var.name, "-") && !startswith(var.name, "internal-")
    error_message = "name must start with a lowercase letter, contain only lowercase letters, digits and hyphens, not end with a hyphen, not start with \"internal-\", and be at most 28 characters."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC to run in (for example the network module's vpc_id output)."
  nullable    = false

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8}([0-9a-f]{9})?$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "load_balancer_subnet_ids" {
  type        = list(string)
  description = "Subnets for the load balancer, in at least two availability zones: public subnets for an internet-facing load balancer, private ones when internal is true."
  nullable    = false

  validation {
    condition     = length(var.load_balancer_subnet_ids) >= 2 && alltrue([for s in var.load_balancer_subnet_ids : can(regex("^subnet-[0-9a-f]{8}([0-9a-f]{9})?$", s))])
    error_message = "load_balancer_subnet_ids must list at least two subnet IDs (subnet-...) in different availability zones."
  }
}

variable "service_subnet_ids" {
  type        = list(string)
  description = "Subnets the tasks run in, normally private subnets with a NAT gateway (tasks must reach the image registry and CloudWatch Logs)."
  nullable    = false

  validation {
    condition     = length(var.service_subnet_ids) >= 1 && alltrue([for s in var.service_subnet_ids : can(regex("^subnet-[0-9a-f]{8}([0-9a-f]{9})?$", s))])
    error_message = "service_subnet_ids must list at least one subnet ID (subnet-...)."
  }
}

variable "image" {
  type        = string
  description = "Container image to run, preferably pinned by digest or an immutable tag (for example 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.4.2)."
  nullable    = false

  validation {
    condition     = can(regex("^[^\\s]+$", var.image))
    error_message = "image must be a non-empty image reference without whitespace."
  }
}

variable "container_port" {
  type        = number
  description = "TCP port the container listens on for HTTP."
  default     = 8080
  nullable    = false

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535 && floor(var.container_port) == var.container_port
    error_message = "container_port must be a whole number from 1 to 65535."
  }
}

variable "cpu" {
  type        = number
  description = "CPU units per task (1024 = 1 vCPU): 256, 512, 1024, 2048, 4096, 8192 or 16384. Billed per vCPU-hour."
  default     = 256
  nullable    = false

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be one of the Fargate sizes: 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  type        = number
  description = "Memory per task in MiB; must be a combination Fargate supports for the chosen cpu (256: 512-2048, 512: 1024-4096, 1024: 2048-8192, 2048: 4096-16384, 4096: 8192-30720 in 1024 steps; 8192: 16384-61440 in 4096 steps; 16384: 32768-122880 in 8192 steps). Billed per GB-hour."
  default     = 512
  nullable    = false

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880 && floor(var.memory) == var.memory
    error_message = "memory must be a whole number of MiB from 512 to 122880."
  }
}

variable "cpu_architecture" {
  type        = string
  description = "CPU architecture of the tasks: X86_64, or ARM64 (Graviton; about 20% cheaper, needs an arm64 or multi-arch image)."
  default     = "X86_64"
  nullable    = false

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_count" {
  type        = number
  description = "Number of tasks to keep running, 0 to 100. Use at least 2 for availability; 0 stops the service but keeps the load balancer (still billed)."
  default     = 2
  nullable    = false

  validation {
    condition     = var.desired_count >= 0 && var.desired_count <= 100 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number from 0 to 100."
  }
}

variable "environment" {
  type        = map(string)
  description = "Plain environment variables for the container. They are visible in the task definition: put secrets in secrets instead."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.environment : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "environment keys must be valid variable names (letters, digits, underscores, not starting with a digit)."
  }
}

variable "secrets" {
  type        = map(string)
  description = "Environment variables filled from AWS Secrets Manager secrets or SSM parameters at task start: variable name => ARN (a Secrets Manager ARN may end in :json-key:: to pick one key). The task execution role is allowed to read exactly these. Secrets encrypted with a customer-managed KMS key also need kms:Decrypt, granted in the key policy."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.secrets : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))
      && can(regex("^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+)$", v))
    ])
    error_message = "secrets keys must be valid variable names and values ARNs of Secrets Manager secrets or SSM parameters."
  }
}

variable "health_check_path" {
  type        = string
  description = "HTTP path the load balancer probes on each task."
  default     = "/"
  nullable    = false

  validation {
    condition     = startswith(var.health_check_path, "/") && length(var.health_check_path) <= 1024
    error_message = "health_check_path must start with / and be at most 1024 characters."
  }
}

variable "health_check_matcher" {
  type        = string
  description = "HTTP status codes that count as healthy, for example \"200\" or \"200-399\"."
  default     = "200-399"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$", var.health_check_matcher))
    error_message = "health_check_matcher must be status codes such as \"200\", \"200,302\" or \"200-399\"."
  }
}

variable "health_check_grace_period_seconds" {
  type        = number
  description = "Seconds after a task starts during which failed load balancer health checks are ignored."
  default     = 60
  nullable    = false

  validation {
    condition     = var.health_check_grace_period_seconds >= 0 && var.health_check_grace_period_seconds <= 2147483647 && floor(var.health_check_grace_period_seconds) == var.health_check_grace_period_seconds
    error_message = "health_check_grace_period_seconds must be a whole number, 0 or more."
  }
}

variable "certificate_arn" {
  type        = string
  description = "ARN of an ACM certificate (in the service's region) for an HTTPS listener on 443; HTTP on 80 then redirects to HTTPS. Empty means plain HTTP on 80 only."
  default     = ""
  nullable    = false

  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be empty or an ACM certificate ARN."
  }
}

variable "internal" {
  type        = bool
  description = "Make the load balancer internal (reachable only inside the VPC and connected networks) instead of internet-facing."
  default     = false
  nullable    = false
}

variable "ingress_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks allowed to reach the load balancer on 80 (and 443 with a certificate)."
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = length(var.ingress_cidr_blocks) >= 1 && alltrue([for c in var.ingress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "ingress_cidr_blocks must list at least one valid IPv4 CIDR block."
  }
}

variable "assign_public_ip" {
  type        = bool
  description = "Give each task a public IPv4 address. Only needed when service_subnet_ids are public subnets without a NAT gateway; public IPv4 addresses are billed hourly."
  default     = false
  nullable    = false
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the container logs (one of the values CloudWatch accepts, for example 7, 30, 90, 365)."
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "container_insights" {
  type        = bool
  description = "Enable CloudWatch Container Insights on the cluster (billed as custom metrics and log ingestion)."
  default     = false
  nullable    = false
}

variable "enable_execute_command" {
  type        = bool
  description = "Allow `aws ecs execute-command` into running containers (ECS Exec); grants the task role the SSM messages permissions it needs."
  default     = false
  nullable    = false
}

variable "load_balancer_deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion; a destroy fails until it is turned off."
  default     = false
  nullable    = false
}

variable "wait_for_steady_state" {
  type        = bool
  description = "Whether an apply waits until the service reaches a steady state (all tasks healthy), so a broken deploy fails the apply."
  default     = true
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that supports them, on top of the provider's default_tags."
  default     = {}
  nullable    = false
}
