# A container service on ECS Fargate behind an Application Load Balancer:
#   internet/VPC --(80/443)--> ALB (load_balancer_subnet_ids) --(container_port)--> tasks (service_subnet_ids)
# The VPC and subnets come from outside (for example the network module).

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  container_name = "app"
  https          = var.certificate_arn != ""

  # Memory (MiB) Fargate accepts for each cpu size.
  fargate_memory = {
    "256"   = [512, 1024, 2048]
    "512"   = range(1024, 4097, 1024)
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }

  # IAM policies must name a Secrets Manager secret without the ":json-key:version-stage:
  # version-id" suffix a task definition may add to pick a key.
  secret_resources = distinct([
    for arn in values(var.secrets) : startswith(split(":", arn)[2], "secretsmanager") ? join(":", slice(split(":", arn), 0, 7)) : arn
  ])

  # Keys only when they have content, so ECS's normalised container definition matches
  # what Terraform sent and plans stay empty when nothing changed.
  container_definition = merge(
    {
      name      = local.container_name
      image     = var.image
      essential = true
      portMappings = [{
        name          = "http"
        containerPort = var.container_port
        hostPort      = var.container_port
        protocol      = "tcp"
      }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = data.aws_region.current.region
          awslogs-stream-prefix = local.container_name
        }
      }
    },
    length(var.environment) == 0 ? {} : {
      environment = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    },
    length(var.secrets) == 0 ? {} : {
      secrets = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    },
    var.enable_execute_command ? { linuxParameters = { initProcessEnabled = true } } : {},
  )
}

# ---------------------------------------------------------------------------------------
# Cluster and logs

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

# ---------------------------------------------------------------------------------------
# IAM: the execution role is used by ECS to pull the image, write logs and read secrets;
# the task role is the identity of the application itself (attach its permissions from
# outside, using the task_role_name output).

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only tasks of this account may assume the role (confused-deputy protection).
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS task execution role of ${var.name}: pulls the image, writes logs, reads the task's secrets."
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  count = length(var.secrets) > 0 ? 1 : 0

  dynamic "statement" {
    for_each = length([for r in local.secret_resources : r if strcontains(r, ":secretsmanager:")]) > 0 ? [1] : []

    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [for r in local.secret_resources : r if strcontains(r, ":secretsmanager:")]
    }
  }

  dynamic "statement" {
    for_each = length([for r in local.secret_resources : r if strcontains(r, ":ssm:")]) > 0 ? [1] : []

    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameters"]
      resources = [for r in local.secret_resources : r if strcontains(r, ":ssm:")]
    }
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = length(var.secrets) > 0 ? 1 : 0

  name   = "read-task-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets[0].json
}

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "Task role of ${var.name}: the AWS identity of the application."
  assume_role_policy = data.aws_iam_policy_document.task_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "task_exec_command" {
  count = var.enable_execute_command ? 1 : 0

  statement {
    sid = "EcsExec"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "task_exec_command" {
  count = var.enable_execute_command ? 1 : 0

  name   = "ecs-exec"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_exec_command[0].json
}

# ---------------------------------------------------------------------------------------
# Task definition

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.container_definition])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = contains(local.fargate_memory[tostring(var.cpu)], var.memory)
      error_message = "memory ${var.memory} MiB is not a Fargate size for cpu ${var.cpu}; allowed: ${join(", ", [for m in local.fargate_memory[tostring(var.cpu)] : tostring(m)])}."
    }
  }
}

# ---------------------------------------------------------------------------------------
# Security groups: clients -> load balancer -> tasks

resource "aws_security_group" "load_balancer" {
  name_prefix = "${var.name}-lb-"
  description = "Load balancer of ${var.name}"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "service" {
  name_prefix = "${var.name}-svc-"
  description = "Tasks of ${var.name}"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-svc" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "load_balancer" {
  for_each = {
    for pair in setproduct(local.https ? [80, 443] : [80], var.ingress_cidr_blocks) : "${pair[0]}-${pair[1]}" => {
      port = pair[0]
      cidr = pair[1]
    }
  }

  security_group_id = aws_security_group.load_balancer.id
  description       = "HTTP${each.value.port == 443 ? "S" : ""} from ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "load_balancer_to_service" {
  security_group_id            = aws_security_group.load_balancer.id
  description                  = "To the tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.service.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "service_from_load_balancer" {
  security_group_id            = aws_security_group.service.id
  description                  = "From the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.load_balancer.id

  tags = var.tags
}

# Tasks need outbound access: the image registry, CloudWatch Logs, Secrets Manager, and
# whatever the application itself calls.
resource "aws_vpc_security_group_egress_rule" "service_all" {
  security_group_id = aws_security_group.service.id
  description       = "All outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

# ---------------------------------------------------------------------------------------
# Load balancer

resource "aws_lb" "this" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = var.internal
  security_groups            = [aws_security_group.load_balancer.id]
  subnets                    = var.load_balancer_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.load_balancer_deletion_protection

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  # A prefix (at most 6 characters) instead of a name, so a change that replaces the target
  # group (port, VPC) can create the new one before the old is deleted.
  name_prefix          = "${substr(replace(var.name, "-", ""), 0, 5)}-"
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check_path
    matcher             = var.health_check_matcher
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.this.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []

      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------
# Service

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = var.health_check_grace_period_seconds
  enable_execute_command            = var.enable_execute_command
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  wait_for_steady_state             = var.wait_for_steady_state

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # Roll back to the last working task definition when a deployment cannot get healthy.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.service_subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = var.container_port
  }

  tags = var.tags

  # The target group must be attached to the load balancer before the service registers
  # tasks in it, and the execution role must keep its permissions until the service is gone.
  depends_on = [
    aws_lb_listener.http,
    aws_lb_listener.https,
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.execution_secrets,
  ]
}
