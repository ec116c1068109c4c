output "path" {
  description = "The managed file."
  value       = tgtest_file.config.path
}
