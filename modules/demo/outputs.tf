output "greeting" {
  description = "The greeting, echoed back through terraform_data.app exactly as it was given."
  value       = terraform_data.app.output.greeting
}

output "id" {
  description = "ID of terraform_data.app (a UUID, new on every replacement)."
  value       = terraform_data.app.id
}

output "replica_ids" {
  description = "IDs of the replica placeholders, one per replica."
  value       = terraform_data.replica[*].id
}

output "settings" {
  description = "The effective settings, with optional attributes filled in."
  value = {
    size    = terraform_data.app.output.size
    enabled = terraform_data.app.output.enabled
  }
}

output "tags" {
  description = "The tags stored on terraform_data.app."
  value       = terraform_data.app.output.tags
}

output "marker_file" {
  description = "Absolute path of the file the apply wrote (contains the greeting), or null when marker_dir is empty."
  value       = local.marker_enabled ? "${var.marker_dir}/${terraform_data.app.id}.applied" : null
}

output "token_set" {
  description = "Whether a non-empty api_token was given."
  value       = nonsensitive(var.api_token != "")
}

output "token_hint" {
  description = "Fingerprint of api_token (\"sha256:\" and the first 12 hex digits of its SHA-256), or \"\" when no token is set. Sensitive."
  value       = var.api_token == "" ? "" : "sha256:${substr(sha256(terraform_data.secret.output), 0, 12)}"
  sensitive   = true
}
