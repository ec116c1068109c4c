variable "greeting" {
  type        = string
  description = "Text the demo echoes back as the `greeting` output and writes into the marker file. Kept literal: text that looks like an HCL template or shell syntax is neither evaluated nor executed."
  nullable    = false

  validation {
    condition     = length(var.greeting) > 0 && length(var.greeting) <= 1024
    error_message = "greeting must be between 1 and 1024 characters long."
  }
}

variable "replicas" {
  type        = number
  description = "Number of replica placeholders (terraform_data resources) to create, 1 to 10. Changing it adds or destroys replicas."
  default     = 1
  nullable    = false

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 10 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number from 1 to 10."
  }
}

variable "tags" {
  type        = map(string)
  description = "Free-form labels stored on the app resource. Changing them is an in-place update."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "tags keys must be 1 to 128 characters and values at most 256 characters."
  }
}

variable "settings" {
  type = object({
    size    = string
    enabled = optional(bool, true)
  })
  description = "Structured settings: `size` is one of small, medium, large; `enabled` defaults to true. Changing them replaces the app resource."
  default = {
    size = "small"
  }
  nullable = false

  validation {
    condition     = contains(["small", "medium", "large"], var.settings.size)
    error_message = "settings.size must be one of: small, medium, large."
  }
}

variable "api_token" {
  type        = string
  description = "A secret the demo stores (sensitive) so that redaction of plan, state and outputs can be tested. Only a fingerprint is exposed, as the sensitive output `token_hint`."
  default     = ""
  sensitive   = true
  nullable    = false
}

variable "apply_delay_seconds" {
  type        = number
  description = "Seconds the create-time local-exec sleeps, 0 to 3600, to make a slow apply on purpose. Changing it replaces the app resource, so the next apply is slow too."
  default     = 0
  nullable    = false

  validation {
    condition     = var.apply_delay_seconds >= 0 && var.apply_delay_seconds <= 3600 && floor(var.apply_delay_seconds) == var.apply_delay_seconds
    error_message = "apply_delay_seconds must be a whole number from 0 to 3600."
  }
}

variable "fail_apply" {
  type        = bool
  description = "When true, the create-time local-exec exits 1 (after the delay, before writing the marker), so the apply fails on purpose. Changing it replaces the app resource."
  default     = false
  nullable    = false
}

variable "marker_dir" {
  type        = string
  description = "When non-empty, an absolute directory where a successful apply writes `<id>.applied` containing the greeting (see the `marker_file` output); destroying the app resource removes that file. Empty disables the side effect."
  default     = ""
  nullable    = false

  validation {
    condition     = var.marker_dir == "" || (startswith(var.marker_dir, "/") && !strcontains(var.marker_dir, "\n"))
    error_message = "marker_dir must be empty or an absolute path (starting with /) without newlines."
  }
}
