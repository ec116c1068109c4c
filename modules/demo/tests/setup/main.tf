# Helper for demo.tftest.hcl: test files cannot use path.*, so this module supplies an
# absolute directory for marker files inside the .terraform folder of the directory the
# tests run in (modules/demo), which `terraform init` created and git ignores.
terraform {
  required_version = ">= 1.5"
}

output "marker_dir" {
  description = "Absolute directory the demo module's apply writes its marker files into during tests."
  value       = "${path.cwd}/.terraform/tftest-markers"
}
