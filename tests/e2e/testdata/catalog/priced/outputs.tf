output "ids" {
  description = "The instances' ids."
  value       = aws_instance.vm[*].id
}
