terraform {
  # Built-ins only: terraform_data and local-exec need no provider download, so plan and
  # apply of this module run anywhere Terraform runs.
  required_version = ">= 1.5"
}
