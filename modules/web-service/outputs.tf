output "url" {
  description = "URL of the service through the load balancer (https:// when certificate_arn is set). Point a DNS name at load_balancer_dns_name for a nicer one."
  value       = "${local.https ? "https" : "http"}://${aws_lb.this.dns_name}/"
}

output "load_balancer_arn" {
  description = "ARN of the Application Load Balancer."
  value       = aws_lb.this.arn
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer, for alias records."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the target group the tasks register in."
  value       = aws_lb_target_group.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the task definition the service runs."
  value       = aws_ecs_task_definition.this.arn
}

output "task_role_arn" {
  description = "ARN of the task role: grant the application's AWS permissions to this role."
  value       = aws_iam_role.task.arn
}

output "task_role_name" {
  description = "Name of the task role, for attaching policies."
  value       = aws_iam_role.task.name
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = aws_iam_role.execution.arn
}

output "service_security_group_id" {
  description = "ID of the tasks' security group: allow it as a source on databases and other backends."
  value       = aws_security_group.service.id
}

output "load_balancer_security_group_id" {
  description = "ID of the load balancer's security group."
  value       = aws_security_group.load_balancer.id
}

output "log_group_name" {
  description = "CloudWatch Logs group holding the container logs."
  value       = aws_cloudwatch_log_group.this.name
}
