variable "out" {
  description = "File the apply writes the AWS_* variables it saw into."
  type        = string
}
