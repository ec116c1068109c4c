#!/usr/bin/env bash
# Tests the Argo CD health checks in two interpreters: a real Lua 5.1 (Debian lua5.1) in the
# sandbox Argo CD gives them (testdata/harness.lua), and gopher-lua itself, which is what Argo
# CD runs, called the way Argo CD calls it (tests/tools/argocd-lua):
#  1. every fixture captured from the real controller (testdata/*.json, see testdata/README.md)
#     gets the health status, and a message with the texts, that testdata/expected.tsv says,
#     in both;
#  2. the tests can fail: broken copies of the scripts must fail step 1;
#  3. argocd-cm.yaml embeds exactly the two .lua files (render-cm.sh --check, and a real YAML
#     parser when python3 has PyYAML).
#
#   bash deploy/argocd/test.sh
# Needs lua5.1 (bash tests/tools/install-lua.sh), jq, and ARGOCD_LUA=the argocd-lua binary
# (bash tests/tools/install-argocd-lua.sh, needs Go; built here when ARGOCD_LUA is unset).
set -euo pipefail
cd "$(dirname "$0")"

lua="${LUA:-$(command -v lua5.1 || true)}"
[ -n "$lua" ] || { echo "no lua5.1: run bash tests/tools/install-lua.sh" >&2; exit 1; }
command -v jq >/dev/null || { echo "no jq" >&2; exit 1; }
argocd_lua="${ARGOCD_LUA:-$(bash ../../tests/tools/install-argocd-lua.sh)}"

# Checks every row of expected.tsv with the given scripts; prints failures, returns their count.
# RUNNER: lua5.1 (the harness) or gopher (argocd-lua).
check_fixtures() { # RUNNER PROJECT_SCRIPT CHECKPOINT_SCRIPT [quiet]
  local runner="$1" project_script="$2" checkpoint_script="$3" quiet="${4:-}" failures=0 rows=0
  local run=("$lua" testdata/harness.lua)
  [ "$runner" = gopher ] && run=("$argocd_lua")
  local fixture expected texts script got status message ref text
  while IFS=$'\t' read -r fixture expected texts; do
    case "$fixture" in '' | '#'*) continue ;; esac
    rows=$((rows + 1))
    case "$fixture" in
      project-*) script="$project_script" ;;
      *) script="$checkpoint_script" ;;
    esac
    if ! got="$("${run[@]}" "$script" "testdata/$fixture" 2>&1)"; then
      [ -n "$quiet" ] || echo "FAIL $runner $fixture: $got"
      failures=$((failures + 1))
      continue
    fi
    status="${got%%$'\t'*}"
    message="${got#*$'\t'}"
    if [ "$status" != "$expected" ]; then
      [ -n "$quiet" ] || echo "FAIL $runner $fixture: $status, expected $expected ($message)"
      failures=$((failures + 1))
      continue
    fi
    ref="$(jq -r '.status.checkpointRef.name // ""' "testdata/$fixture")"
    while IFS= read -r text; do
      [ -n "$text" ] || continue
      text="${text//\{checkpointRef\}/$ref}"
      if [[ "$message" != *"$text"* ]]; then
        [ -n "$quiet" ] || echo "FAIL $runner $fixture: $status, but the message lacks \"$text\": $message"
        failures=$((failures + 1))
      fi
    done < <(tr '\t' '\n' <<<"$texts")
    [ -n "$quiet" ] || printf 'ok   %-6s %-40s %-11s %s\n' "$runner" "$fixture" "$status" "${message:0:80}"
  done <testdata/expected.tsv
  [ "$rows" -gt 0 ] || { echo "FAIL: expected.tsv has no rows"; failures=$((failures + 1)); }
  return "$failures"
}

echo "--- health checks on the captured fixtures"
failed=0
for fixture in testdata/*.json; do
  if ! grep -q "^$(basename "$fixture")"$'\t' testdata/expected.tsv; then
    echo "FAIL $(basename "$fixture"): no row in testdata/expected.tsv"
    failed=1
  fi
done
while IFS=$'\t' read -r fixture _; do
  case "$fixture" in '' | '#'*) continue ;; esac
  [ -f "testdata/$fixture" ] || { echo "FAIL $runner $fixture: in expected.tsv, but no such fixture"; failed=1; }
done <testdata/expected.tsv
check_fixtures lua5.1 health-project.lua health-checkpoint.lua || failed=1
echo "--- the same in gopher-lua, as Argo CD runs them"
check_fixtures gopher health-project.lua health-checkpoint.lua || failed=1

echo "--- broken copies of the scripts must fail"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mutants=0
mutant() { # NAME SCRIPT SED-EXPRESSION
  local broken="$tmp/$1.lua"
  sed "$3" "$2" >"$broken"
  if cmp -s "$broken" "$2"; then
    echo "FAIL mutant $1: the sed expression changed nothing"
    failed=1
    return
  fi
  local p=health-project.lua c=health-checkpoint.lua
  case "$2" in health-project.lua) p="$broken" ;; *) c="$broken" ;; esac
  if check_fixtures lua5.1 "$p" "$c" quiet; then
    echo "FAIL mutant $1: the fixtures still pass"
    failed=1
  else
    mutants=$((mutants + 1))
  fi
}
mutant project-suspended-is-healthy health-project.lua 's/hs.status = "Suspended"/hs.status = "Healthy"/'
mutant project-ignores-generation health-project.lua 's/observed < generation/false/'
mutant project-no-cost health-project.lua 's/ (cost " \.\. delta/ (" .. delta/'
mutant project-uses-string-lib health-project.lua 's/(tonumber(delta) or -1) >= 0/string.sub(delta, 1, 1) ~= "-"/'
mutant checkpoint-pending-is-healthy health-checkpoint.lua 's/hs.status = "Suspended"/hs.status = "Healthy"/'
mutant checkpoint-rejected-is-healthy health-checkpoint.lua '/phase == "Rejected"/,/return hs/s/"Degraded"/"Healthy"/'
mutant checkpoint-unverified-ignored health-checkpoint.lua 's/verified.status == "False"/false/'
echo "$mutants mutants caught"

echo "--- argocd-cm.yaml embeds exactly the scripts"
./render-cm.sh --check || failed=1
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - <<'EOF' || failed=1
import yaml
cm = yaml.safe_load(open("argocd-cm.yaml"))
data = cm["data"]
for kind, script in (("Project", "health-project.lua"), ("Checkpoint", "health-checkpoint.lua")):
    key = "resource.customizations.health.tollgate.dev_" + kind
    assert data[key] == open(script).read(), key + " differs from " + script
    ignore = yaml.safe_load(data["resource.customizations.ignoreDifferences.tollgate.dev_" + kind])
    assert ignore["managedFieldsManagers"] == ["tollgate-controller"], ignore
print("ok   argocd-cm.yaml parsed: both health scripts verbatim, ignoreDifferences valid")
EOF
else
  echo "(python3 without PyYAML: the YAML parse check is skipped; render-cm.sh --check passed)"
fi

if [ "$failed" != 0 ]; then
  echo "Argo CD health tests FAILED" >&2
  exit 1
fi
echo "Argo CD health tests passed"
