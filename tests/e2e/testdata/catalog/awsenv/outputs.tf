output "out" {
  description = "Where the AWS_* variables were written."
  value       = terraform_data.seen.output
}
