# A test module for the credential tests: applying it records which AWS_* environment
# variables Terraform (and so any provider it runs) received. The path reaches the shell
# through `environment` only.
resource "terraform_data" "seen" {
  input = var.out

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = "env | grep '^AWS_' | sort > \"$SEEN_FILE\""
    environment = {
      SEEN_FILE = var.out
    }
  }
}
