#!/usr/bin/env bash
# The AWS module suite: every example under examples/ that uses an AWS module is rendered by
# `tollgate render`, then `terraform init`, `validate`, `plan`, `apply`, a second `plan` that
# must show no changes, and `destroy`, with the real hashicorp/aws provider
# (tests/tools/install-aws-provider.sh) against moto on loopback (tests/tools/install-moto.sh).
# What moto does not emulate per module is written down in docs/aws-modules.md.
#
# Only this harness points the provider at moto: it writes `moto_override.tf` (a Terraform
# override file) beside the rendered main.tf and sets AWS_ENDPOINT_URL. The modules and the
# rendered configuration are exactly what the controller would run.
#
#   tests/aws/modules.sh [example...]
#
# Each real plan is priced by `tollgate cost` and the table printed; TOLLGATE_AWS_KEEP=DIR
# also keeps each plan JSON there (the input of golden cost tables), and the log of a failed
# example.
# Env: TOLLGATE (the tollgate binary; default: build it), TOLLGATE_TERRAFORM,
# TOLLGATE_AWS_PROVIDER_CONFIG (default: tests/tools/install-aws-provider.sh's output).
set -euo pipefail
cd "$(dirname "$0")/../.."

examples=("$@")
[ "${#examples[@]}" -gt 0 ] || examples=(bucket static-site network postgres web-service)

terraform="${TOLLGATE_TERRAFORM:-terraform}"
if [ -z "${TOLLGATE:-}" ]; then
  cargo build -q -p tollgate --bin tollgate
  TOLLGATE="${CARGO_TARGET_DIR:-target}/debug/tollgate"
fi
TF_CLI_CONFIG_FILE="${TOLLGATE_AWS_PROVIDER_CONFIG:-$(bash tests/tools/install-aws-provider.sh)}"
export TF_CLI_CONFIG_FILE
moto_server="$(bash tests/tools/install-moto.sh)"
python="$(dirname "$moto_server")/python"

work="$(mktemp -d)"
moto_pid=""
cleanup() {
  [ -z "$moto_pid" ] || kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# AWS managed policies (e.g. AmazonECSTaskExecutionRolePolicy, which web-service attaches)
# exist in moto only when it loads them.
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; exit 1; }
  sleep 0.1
done

# Nothing here may reach real AWS: every endpoint is moto, the keys are moto's.
export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE

# The examples name a VPC, subnets and a security group of their own account; make them in
# moto and substitute their ids into the rendered variables.
ids="$("$python" - "$endpoint" <<'PY'
import sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="eu-west-1")
vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
zones = ["eu-west-1a", "eu-west-1b"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=zones[i % 2])["Subnet"]["SubnetId"] for i in range(4)]
sg = ec2.create_security_group(GroupName="clients", Description="example clients", VpcId=vpc)["GroupId"]
print(f"s/vpc-0123456789abcdef0/{vpc}/g; s/subnet-0aaaaaaaaaaaaaaa1/{subnets[0]}/g; s/subnet-0aaaaaaaaaaaaaaa2/{subnets[1]}/g; s/subnet-0bbbbbbbbbbbbbbb1/{subnets[2]}/g; s/subnet-0bbbbbbbbbbbbbbb2/{subnets[3]}/g; s/sg-0123456789abcdef0/{sg}/g")
PY
)"

# Provider 6.x reads and writes S3 bucket tags through S3 Control, whose endpoint rules put
# the account id in front of the endpoint's host: it dials `123456789012.127.0.0.1`, which no
# resolver knows. moto answers plain HTTP requests in proxy form too (it routes S3 Control by
# its `/v20180820/` path), so it is the proxy for that one name; Go never proxies loopback
# addresses (127.0.0.1 itself), so every other call goes straight to moto as before.
moto_proxy=(HTTP_PROXY="$endpoint" NO_PROXY=127.0.0.1,localhost)

# The example's Project as the harness renders it: `harness_project SRC DST [JSON]` merges
# JSON ({module: {input: value}}) into the inputs of every component of that module. Always:
# components of the web-service module do not wait for a steady ECS service (moto runs no
# tasks and has no ListServiceDeployments, so the provider would poll until its 20-minute
# timeout; docs/aws-modules.md).
harness_project() {
  "$python" - "$1" "$2" "${3:-}" <<'PY'
import json, sys, yaml
with open(sys.argv[1]) as f:
    project = yaml.safe_load(f)
inputs = {"web-service": {"wait_for_steady_state": False}}
for module, values in json.loads(sys.argv[3] or "{}").items():
    inputs.setdefault(module, {}).update(values)
for component in project["spec"]["components"]:
    component.setdefault("inputs", {}).update(inputs.get(component["module"], {}))
with open(sys.argv[2], "w") as f:
    yaml.safe_dump(project, f, sort_keys=False)
PY
}

tf() {
  local dir="$1" command="$2"
  shift 2
  # `validate` takes no -input.
  local input=(-input=false)
  [ "$command" != validate ] || input=()
  env "${moto_proxy[@]}" "$terraform" -chdir="$dir" "$command" -no-color "${input[@]}" "$@"
}

failed=()
for example in "${examples[@]}"; do
  echo "== $example"
  started=$SECONDS
  dir="$work/$example"
  log="$work/$example.log"
  # Not `if ! ( … )`: bash ignores `set -e` in a subshell whose status is tested.
  set +e
  (
    set -e
    project="$work/$example.yaml"
    harness_project "examples/$example/project.yaml" "$project"
    "$TOLLGATE" render -f "$project" -o "$dir" --backend local >/dev/null
    sed -i "$ids" "$dir/tollgate.auto.tfvars.json"
    cat >"$dir/moto_override.tf" <<'HCL'
# Written by tests/aws/modules.sh: moto on loopback (AWS_ENDPOINT_URL) stands in for AWS.
provider "aws" {
  skip_metadata_api_check = true
  s3_use_path_style       = true
}
HCL
    tf "$dir" init >"$log" 2>&1
    tf "$dir" validate >>"$log" 2>&1
    echo "   validate: ok"
    tf "$dir" plan -out=tfplan >>"$log" 2>&1
    "$terraform" -chdir="$dir" show -json tfplan >"$dir/plan.json"
    echo "   plan: $(grep -E '^Plan:' "$log" | tail -1)"
    "$TOLLGATE" cost "$dir/plan.json" | sed 's/^/   | /'
    [ -z "${TOLLGATE_AWS_KEEP:-}" ] || cp "$dir/plan.json" "$TOLLGATE_AWS_KEEP/$example.json"
    tf "$dir" apply tfplan >>"$log" 2>&1
    echo "   apply: $(grep -E '^Apply complete' "$log" | tail -1)"
    status=0
    tf "$dir" plan -detailed-exitcode >>"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || { echo "   second plan: exit $status, expected no changes (0)"; exit 1; }
    echo "   second plan: no changes"
    # The postgres example keeps the module's deletion protection (on by default): lift it
    # as an operator would, by changing the Project and applying, before the destroy.
    if [ "$example" = postgres ]; then
      harness_project "examples/$example/project.yaml" "$work/$example-unprotected.yaml" \
        '{"postgres": {"deletion_protection": false}}'
      "$TOLLGATE" render -f "$work/$example-unprotected.yaml" -o "$dir" --backend local >/dev/null
      sed -i "$ids" "$dir/tollgate.auto.tfvars.json"
      tf "$dir" apply -auto-approve >>"$log" 2>&1
      echo "   deletion protection: lifted"
    fi
    tf "$dir" destroy -auto-approve >>"$log" 2>&1
    echo "   destroy: $(grep -E '^Destroy complete' "$log" | tail -1)"
  )
  status=$?
  set -e
  echo "   ($((SECONDS - started)) s)"
  if [ "$status" -ne 0 ]; then
    [ -z "${TOLLGATE_AWS_KEEP:-}" ] || cp "$log" "$TOLLGATE_AWS_KEEP/"
    echo "   FAILED; its log:"
    tail -n 60 "$log" | sed 's/^/   | /'
    failed+=("$example")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "AWS module suite: failed: ${failed[*]}"
  exit 1
fi
echo "AWS module suite: ${#examples[@]} example(s) passed"
