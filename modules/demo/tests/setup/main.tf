# Helper for demo.tftest.hcl: test files cannot use path.*, so this module supplies an
# absolute directory for marker files inside the demo module's .terraform folder, which
# `terraform init` created and git ignores. (Not path.cwd: with -chdir it is the directory
# terraform was started from, not the module's.)
terraform {
  required_version = ">= 1.5"
}

output "marker_dir" {
  description = "Absolute directory the demo module's apply writes its marker files into during tests."
  value       = abspath("${path.module}/../../.terraform/tftest-markers")
}
