output "out" {
  description = "Where the AWS_* variables were written."
  value       = terraform_data.seen.output
}

output "secrets_echo" {
  description = "The secret inputs, handed back: an output path the redaction tests follow (kept only in the outputs Secret)."
  value       = "${var.token}/${var.db_password}"
  sensitive   = true
}
