# A module made only of Terraform built-ins (terraform_data and local-exec), so the whole
# tollgate loop -- render, plan, price, approve, apply, destroy -- runs without any cloud.
#
# What a plan can show:
#   - changing greeting, settings, marker_dir, apply_delay_seconds or fail_apply replaces
#     terraform_data.app (a destroy + an add),
#   - changing tags updates terraform_data.app in place,
#   - changing replicas adds or destroys terraform_data.replica instances,
#   - changing api_token updates terraform_data.secret in place (a sensitive value).
#
# The local-exec commands are fixed POSIX sh text. Every user-supplied value reaches the
# shell through `environment` only, never by interpolation into the command, so text such as
# "$(rm -rf ~)" in a greeting is written to the marker file verbatim and never executed.

locals {
  marker_enabled = var.marker_dir != ""
}

resource "terraform_data" "app" {
  input = {
    greeting   = var.greeting
    size       = var.settings.size
    enabled    = var.settings.enabled
    tags       = var.tags
    marker_dir = var.marker_dir
  }

  triggers_replace = {
    greeting            = var.greeting
    settings            = var.settings
    marker_dir          = var.marker_dir
    apply_delay_seconds = var.apply_delay_seconds
    fail_apply          = var.fail_apply
  }

  # Create: optionally sleep, optionally fail, then optionally write the marker file.
  # A failed apply therefore leaves no marker behind.
  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -eu
      if [ "$TOLLGATE_DEMO_DELAY" -gt 0 ]; then
        sleep "$TOLLGATE_DEMO_DELAY"
      fi
      if [ "$TOLLGATE_DEMO_FAIL" = "true" ]; then
        echo "tollgate demo: fail_apply is true, failing this apply on purpose" >&2
        exit 1
      fi
      if [ -n "$TOLLGATE_DEMO_MARKER_DIR" ]; then
        mkdir -p "$TOLLGATE_DEMO_MARKER_DIR"
        marker="$TOLLGATE_DEMO_MARKER_DIR/$TOLLGATE_DEMO_ID.applied"
        printf '%s' "$TOLLGATE_DEMO_GREETING" > "$marker.tmp"
        mv "$marker.tmp" "$marker"
      fi
    EOT
    environment = {
      TOLLGATE_DEMO_ID         = self.id
      TOLLGATE_DEMO_GREETING   = var.greeting
      TOLLGATE_DEMO_DELAY      = tostring(var.apply_delay_seconds)
      TOLLGATE_DEMO_FAIL       = tostring(var.fail_apply)
      TOLLGATE_DEMO_MARKER_DIR = var.marker_dir
    }
  }

  # Destroy (also the old instance of a replacement): remove this instance's marker file.
  # Destroy-time provisioners may only read `self`, so the directory comes from `input`.
  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh", "-c"]
    command     = <<-EOT
      set -eu
      if [ -n "$TOLLGATE_DEMO_MARKER_DIR" ]; then
        rm -f "$TOLLGATE_DEMO_MARKER_DIR/$TOLLGATE_DEMO_ID.applied"
      fi
    EOT
    environment = {
      TOLLGATE_DEMO_ID         = self.id
      TOLLGATE_DEMO_MARKER_DIR = self.input.marker_dir
    }
  }
}

resource "terraform_data" "replica" {
  count = var.replicas

  input = {
    index = count.index
    size  = var.settings.size
  }
}

# Holds the secret so that plans, state and outputs carry a real sensitive value for
# redaction tests. Terraform marks it sensitive; `terraform show -json` still contains it,
# which is exactly what tollgate must redact.
resource "terraform_data" "secret" {
  input = var.api_token
}
