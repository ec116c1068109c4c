terraform {
  required_version = ">= 1.5.0"
  required_providers {
    # Fully qualified: OpenTofu resolves a bare "tollgate/tgtest" on registry.opentofu.org.
    tgtest = { source = "registry.terraform.io/tollgate/tgtest" }
  }
}
