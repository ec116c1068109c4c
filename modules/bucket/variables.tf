variable "bucket_name" {
  type        = string
  description = "Name of the S3 bucket. Bucket names are global across all AWS accounts: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  nullable    = false

  validation {
    condition = (
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
      && !strcontains(var.bucket_name, "..")
      && !can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$", var.bucket_name))
      && !startswith(var.bucket_name, "xn--")
      && !startswith(var.bucket_name, "sthree-")
      && !endswith(var.bucket_name, "-s3alias")
      && !endswith(var.bucket_name, "--ol-s3")
    )
    error_message = "bucket_name must be a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit, no \"..\", not an IP address, no reserved prefix (xn--, sthree-) or suffix (-s3alias, --ol-s3)."
  }
}

variable "versioning_enabled" {
  type        = bool
  description = "Keep every version of every object, so overwrites and deletes can be undone. Previous versions are billed as storage until a lifecycle rule expires them."
  default     = true
  nullable    = false
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a KMS key for SSE-KMS encryption (with an S3 Bucket Key to cut KMS request costs). Null means SSE-S3 (AES256, no KMS charges). Either way, every object is encrypted at rest."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or the ARN of a KMS key or alias (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "lifecycle_rules" {
  type = list(object({
    id                                     = string
    enabled                                = optional(bool, true)
    prefix                                 = optional(string, "")
    transitions                            = optional(list(object({ days = number, storage_class = string })), [])
    expiration_days                        = optional(number)
    noncurrent_version_transitions         = optional(list(object({ days = number, storage_class = string })), [])
    noncurrent_version_expiration_days     = optional(number)
    abort_incomplete_multipart_upload_days = optional(number, 7)
  }))
  description = "Optional lifecycle rules, each for the objects under prefix (\"\" = the whole bucket): transitions to cheaper storage classes after N days, expiration of current objects, transitions and expiration of previous versions, and cleanup of abandoned multipart uploads. Empty means a single rule that aborts multipart uploads left incomplete for 7 days."
  default     = []
  nullable    = false

  validation {
    condition     = length(var.lifecycle_rules) == length(distinct([for r in var.lifecycle_rules : r.id])) && alltrue([for r in var.lifecycle_rules : length(r.id) >= 1 && length(r.id) <= 255])
    error_message = "Each lifecycle rule needs a unique id of 1 to 255 characters."
  }

  validation {
    condition = alltrue(flatten([
      for r in var.lifecycle_rules : [
        for t in concat(r.transitions, r.noncurrent_version_transitions) :
        contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], t.storage_class) && t.days >= 0 && floor(t.days) == t.days
      ]
    ]))
    error_message = "Transition storage_class must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE, and days a whole number, 0 or more."
  }

  validation {
    condition = alltrue([
      for r in var.lifecycle_rules :
      (r.expiration_days == null || try(r.expiration_days >= 1, false))
      && (r.noncurrent_version_expiration_days == null || try(r.noncurrent_version_expiration_days >= 1, false))
      && r.abort_incomplete_multipart_upload_days >= 1
    ])
    error_message = "expiration_days, noncurrent_version_expiration_days and abort_incomplete_multipart_upload_days must be at least 1 when set."
  }
}

variable "enforce_tls" {
  type        = bool
  description = "Add a bucket policy statement that denies every request not made over TLS."
  default     = true
  nullable    = false
}

variable "force_destroy" {
  type        = bool
  description = "Allow destroying the bucket while it still holds objects (they are all deleted, every version). Off by default so a destroy never deletes data silently."
  default     = false
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to the bucket, on top of the provider's default_tags."
  default     = {}
  nullable    = false
}
