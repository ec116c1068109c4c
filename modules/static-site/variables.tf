variable "name" {
  type        = string
  description = "Name of the site, used for the bucket name prefix, the distribution comment and Name tags. Lowercase letters, digits and hyphens, starting with a letter, at most 31 characters (S3 limits bucket name prefixes to 37)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name must start with a lowercase letter and contain only lowercase letters, digits and hyphens, at most 31 characters."
  }
}

variable "bucket_name" {
  type        = string
  description = "Exact name of the S3 bucket holding the site's files. Empty means a unique name generated from name (\"<name>-site-<suffix>\")."
  default     = ""
  nullable    = false

  validation {
    condition     = var.bucket_name == "" || (can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !strcontains(var.bucket_name, ".."))
    error_message = "bucket_name must be empty or a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "default_root_object" {
  type        = string
  description = "Object CloudFront returns for a request to the root URL (/)."
  default     = "index.html"
  nullable    = false

  validation {
    condition     = length(var.default_root_object) > 0 && !startswith(var.default_root_object, "/")
    error_message = "default_root_object must be a non-empty object key without a leading slash, for example index.html."
  }
}

variable "price_class" {
  type        = string
  description = "CloudFront price class, which decides the edge locations used and the per-GB price: PriceClass_100 (North America, Europe, Israel; cheapest), PriceClass_200 (adds most of Asia, Middle East, Africa), PriceClass_All (every edge location)."
  default     = "PriceClass_100"
  nullable    = false

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be one of: PriceClass_100, PriceClass_200, PriceClass_All."
  }
}

variable "aliases" {
  type        = list(string)
  description = "Custom domain names (CNAMEs) for the distribution, for example [\"www.example.com\"]. Needs acm_certificate_arn. DNS records pointing at the distribution are not created by this module."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for a in var.aliases : can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", a))])
    error_message = "aliases must be lowercase DNS names such as www.example.com (a leading *. wildcard is allowed)."
  }
}

variable "acm_certificate_arn" {
  type        = string
  description = "ARN of an ACM certificate in us-east-1 covering every alias. Empty means the default *.cloudfront.net certificate (then aliases must be empty)."
  default     = ""
  nullable    = false

  validation {
    condition     = var.acm_certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/.+$", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be empty or the ARN of an ACM certificate in us-east-1 (CloudFront only accepts certificates from us-east-1)."
  }
}

variable "minimum_protocol_version" {
  type        = string
  description = "Minimum TLS version and cipher policy for viewers when a custom certificate is used (with the default certificate CloudFront decides)."
  default     = "TLSv1.2_2021"
  nullable    = false

  validation {
    condition     = contains(["TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021"], var.minimum_protocol_version)
    error_message = "minimum_protocol_version must be one of: TLSv1.2_2018, TLSv1.2_2019, TLSv1.2_2021 (older TLS policies are not allowed)."
  }
}

variable "custom_error_responses" {
  type = list(object({
    error_code            = number
    response_code         = optional(number)
    response_page_path    = optional(string)
    error_caching_min_ttl = optional(number, 10)
  }))
  description = "How CloudFront answers origin errors, for example a custom 404 page, or {error_code = 403, response_code = 200, response_page_path = \"/index.html\"} for a single-page app. Without s3:ListBucket the origin answers a missing object with 403, not 404."
  default     = []
  nullable    = false

  validation {
    condition = alltrue([
      for r in var.custom_error_responses : contains([400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504], r.error_code)
      && (r.response_page_path == null || startswith(coalesce(r.response_page_path, "/"), "/"))
      && (r.response_code == null) == (r.response_page_path == null)
    ])
    error_message = "Each custom_error_responses entry needs an error_code CloudFront can customise (400, 403, 404, 405, 414, 416, 500-504); response_code and response_page_path (starting with /) must be given together or not at all."
  }
}

variable "geo_restriction" {
  type = object({
    type      = optional(string, "none")
    locations = optional(list(string), [])
  })
  description = "Country restriction: type none, whitelist or blacklist, with ISO 3166-1 alpha-2 country codes in locations."
  default     = {}
  nullable    = false

  validation {
    condition     = contains(["none", "whitelist", "blacklist"], var.geo_restriction.type) && (var.geo_restriction.type == "none") == (length(var.geo_restriction.locations) == 0)
    error_message = "geo_restriction.type must be none, whitelist or blacklist; locations must be empty for none and non-empty otherwise."
  }
}

variable "web_acl_id" {
  type        = string
  description = "ARN of an AWS WAF (v2, CLOUDFRONT scope) web ACL to attach, or null for none. WAF is billed separately."
  default     = null
}

variable "versioning_enabled" {
  type        = bool
  description = "Keep previous versions of the site's objects so a bad deploy can be rolled back."
  default     = true
  nullable    = false
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days after which previous object versions are deleted (only with versioning_enabled). 0 keeps them forever, which grows storage cost with every deploy."
  default     = 30
  nullable    = false

  validation {
    condition     = var.noncurrent_version_expiration_days >= 0 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number, 0 or more."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Allow destroying the bucket while it still holds objects (they are deleted). Off by default so a destroy never deletes a site's files silently."
  default     = false
  nullable    = false
}

variable "wait_for_deployment" {
  type        = bool
  description = "Whether an apply waits until the distribution is deployed to every edge location (can take several minutes)."
  default     = true
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that supports them, on top of the provider's default_tags."
  default     = {}
  nullable    = false
}
