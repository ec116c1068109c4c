variable "out" {
  description = "File the apply writes the AWS_* variables (and the secret inputs) it saw into."
  type        = string
}

variable "token" {
  description = "A secret input (secretKeyRef or awsSecretsManager in the tests)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "db_password" {
  description = "A second secret input."
  type        = string
  default     = ""
  sensitive   = true
}

variable "note" {
  description = "Not sensitive: a secret reference here must be refused."
  type        = string
  default     = ""
}

variable "leak" {
  description = "When true the apply fails after printing its AWS secret key: Terraform's error then echoes it."
  type        = bool
  default     = false
}

variable "await_new_credentials" {
  description = "When true the second fetch from the credentials endpoint waits until it answers other credentials than the first."
  type        = bool
  default     = false
}
