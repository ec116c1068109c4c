output "name_servers" {
  description = "The zone's name servers."
  value       = terraform_data.zone.output.nameservers
}

output "tollgate_manual_operation" {
  description = "The step a person makes at the registrar; tollgate waits until it is marked done."
  value = {
    title        = "Delegate ${var.domain} at its registrar"
    instructions = "At the registrar of ${var.domain}, set the name servers to: ${join(", ", terraform_data.zone.output.nameservers)}"
  }
}
