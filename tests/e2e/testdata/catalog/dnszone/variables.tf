variable "domain" {
  description = "The delegated domain."
  type        = string
}

variable "nameservers" {
  description = "The zone's name servers, to be set at the registrar."
  type        = list(string)
  default     = ["ns-1.example.net", "ns-2.example.net"]
}
