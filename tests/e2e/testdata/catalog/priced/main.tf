# A test module with a price: `instances` t3.micro EC2 instances (about $8.39 a month each
# in us-east-1 with the embedded price book), planned and applied against moto in the
# namespace budget tests. Never used against real AWS.
resource "aws_instance" "vm" {
  count         = var.instances
  ami           = "ami-12345678"
  instance_type = "t3.micro"
}
