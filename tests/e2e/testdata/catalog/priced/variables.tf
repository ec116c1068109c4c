variable "instances" {
  description = "How many t3.micro instances."
  type        = number
  default     = 1
}
