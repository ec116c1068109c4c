variable "path" {
  description = "File whose content Terraform manages; edit it by hand to make drift."
  type        = string
}

variable "content" {
  description = "The declared content of the file."
  type        = string
}

variable "secret" {
  description = "Declared content of <path>.secret: a sensitive value drift must never show."
  type        = string
  default     = "none"
  sensitive   = true
}
