# A test module that needs a person after its apply: a DNS zone whose delegation is made
# at the domain's registrar, outside Terraform. It asks for that step through the
# `tollgate_manual_operation` output (docs/operator-guide.md, "A module asks for a manual
# operation"); terraform_data stands in for the zone, so no cloud is needed.
resource "terraform_data" "zone" {
  input = {
    domain      = var.domain
    nameservers = var.nameservers
  }
}
