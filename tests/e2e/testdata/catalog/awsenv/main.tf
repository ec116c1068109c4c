# A test module for the credential tests: applying it records which AWS_* environment
# variables Terraform (and so any provider it runs) received, the credentials an AWS SDK
# would get from the container-credentials endpoint they name (asked twice, as an SDK asks
# again when its copy expires: FETCH_1 and FETCH_2; with `await_new_credentials`, FETCH_2 is
# the first answer that differs from FETCH_1, asked for up to two minutes, as a long apply
# outliving its first session would), and the secret inputs. Every value
# reaches the shell through `environment` only. A new secret value replaces the resource
# (through its hash), so a rotation is applied and recorded again.
locals {
  fetch = "if [ -n \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" ]; then curl -sS -H \"Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN\" \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; fi"
}

resource "terraform_data" "seen" {
  input            = var.out
  triggers_replace = sha256("${var.token}/${var.db_password}/${var.note}/${var.leak}")

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = "{ env | grep '^AWS_' | sort; first=$(${local.fetch}); echo \"FETCH_1=$first\"; next=$(${local.fetch}); i=0; while [ \"$AWAIT_NEW\" = true ] && [ \"$next\" = \"$first\" ] && [ $i -lt 240 ]; do sleep 0.5; next=$(${local.fetch}); i=$((i+1)); done; echo \"FETCH_2=$next\"; echo \"TOKEN=$SEEN_TOKEN\"; echo \"DB_PASSWORD=$SEEN_DB_PASSWORD\"; } > \"$SEEN_FILE\""
    environment = {
      SEEN_FILE        = var.out
      SEEN_TOKEN       = var.token
      SEEN_DB_PASSWORD = var.db_password
      AWAIT_NEW        = tostring(var.await_new_credentials)
    }
  }

  # A hostile apply: print the credentials Terraform received (keys, or what the endpoint
  # hands out), then fail.
  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = "if [ \"$LEAK\" = true ]; then echo \"leaking $AWS_SECRET_ACCESS_KEY $(eval \"$FETCH\")\"; echo \"leaking $AWS_SECRET_ACCESS_KEY $(eval \"$FETCH\")\" >&2; exit 1; fi"
    environment = {
      LEAK  = tostring(var.leak)
      FETCH = local.fetch
    }
  }
}
