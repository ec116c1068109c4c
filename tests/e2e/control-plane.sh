#!/usr/bin/env bash
# A real Kubernetes control plane for tollgate's end-to-end tests: etcd, kube-apiserver and
# (optionally) kube-controller-manager on 127.0.0.1, with RBAC, static-token users and one
# kubeconfig per user. No kubelet, no container runtime, no Docker, no download sites: the
# binaries are built from the Go module proxy (Route A) or from Debian's kubernetes 1.20
# source package (Route B) and cached under ~/.cache/tollgate/k8s/<version>/.
#
# usage: tests/e2e/control-plane.sh up|down|status|build|env
#
#   up      build the binaries if needed, start everything, wait until ready, apply the test
#           RBAC, write kubeconfigs and $TOLLGATE_E2E_DIR/env. A no-op when already healthy.
#   down    stop what `up` started (by PID file). A no-op when nothing runs.
#   status  print what runs and the Kubernetes version; exit 0 if healthy, 3 otherwise.
#   build   only build (or check) the cached binaries.
#   env     print the path of the env file (exit 1 if the control plane is not up).
#
# Environment (all optional):
#   TOLLGATE_CACHE                cache root                     (~/.cache/tollgate)
#   TOLLGATE_E2E_DIR              state: kubeconfigs, env, logs  ($TOLLGATE_CACHE/e2e)
#   TOLLGATE_K8S_ROUTE            go (Route A, default) | debian-1.20 (Route B)
#   TOLLGATE_E2E_ETCD_PORT        etcd client port               (23790)
#   TOLLGATE_E2E_ETCD_PEER_PORT   etcd peer port                 (23800)
#   TOLLGATE_E2E_APISERVER_PORT   kube-apiserver secure port     (16443)
#   TOLLGATE_E2E_KCM_PORT         kube-controller-manager port   (16257)
#   TOLLGATE_E2E_KCM              1 = run kube-controller-manager (GC, namespace deletion) (1)
#   TOLLGATE_E2E_KEEP_DATA        1 = keep etcd data across a restart (0: each start is fresh)
#   TOLLGATE_E2E_APPLY_CRDS       1 = apply $repo/crds/*.yaml after start (0)
#   TOLLGATE_E2E_TIMEOUT          seconds to wait for each component to become ready (120)
#   TOLLGATE_E2E_BUILD_TIMEOUT    seconds a cold build may take (3600)
#
# After `up`, `source "$TOLLGATE_E2E_DIR/env"` gives (see write_env below):
#   TOLLGATE_E2E_SERVER, TOLLGATE_E2E_K8S_VERSION, TOLLGATE_E2E_KUBECTL,
#   TOLLGATE_E2E_{ADMIN,ALICE,BOB,CAROL}_KUBECONFIG, TOLLGATE_E2E_{...}_USER, ...
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
module_dir="$script_dir/controlplane"

cache_root=${TOLLGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate}
e2e_dir=${TOLLGATE_E2E_DIR:-$cache_root/e2e}
route=${TOLLGATE_K8S_ROUTE:-go}
etcd_port=${TOLLGATE_E2E_ETCD_PORT:-23790}
etcd_peer_port=${TOLLGATE_E2E_ETCD_PEER_PORT:-23800}
apiserver_port=${TOLLGATE_E2E_APISERVER_PORT:-16443}
kcm_port=${TOLLGATE_E2E_KCM_PORT:-16257}
with_kcm=${TOLLGATE_E2E_KCM:-1}
keep_data=${TOLLGATE_E2E_KEEP_DATA:-0}
apply_crds=${TOLLGATE_E2E_APPLY_CRDS:-0}
timeout_s=${TOLLGATE_E2E_TIMEOUT:-120}
build_timeout_s=${TOLLGATE_E2E_BUILD_TIMEOUT:-3600}

service_cidr=10.0.0.0/24
service_ip=10.0.0.1
namespace=team-a
server="https://127.0.0.1:$apiserver_port"

pki="$e2e_dir/pki"
run_dir="$e2e_dir/run"
log_dir="$e2e_dir/logs"
etcd_data="$e2e_dir/etcd-data"
env_file="$e2e_dir/env"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$route" in
  go)
    k8s_version=$(awk '$1 == "require" { $1 = $2; $2 = $3 } $1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2 }' "$module_dir/go.mod")
    [[ -n $k8s_version ]] || die "cannot read the k8s.io/kubernetes version from $module_dir/go.mod"
    k8s_cache="$cache_root/k8s/$k8s_version"
    kcm_controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,clusterrole-aggregation-controller,root-ca-certificate-publisher-controller
    ;;
  debian-1.20)
    k8s_version=v1.20.2
    k8s_cache="$cache_root/k8s/$k8s_version-debian"
    kcm_controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token,clusterrole-aggregation,root-ca-cert-publisher
    ;;
  *) die "unknown TOLLGATE_K8S_ROUTE=$route (expected: go | debian-1.20)" ;;
esac
bin_dir="$k8s_cache/bin"

# ---------------------------------------------------------------------------------------------
# Building (cached)

go_env() {
  export GOPATH="$cache_root/go"
  export GOMODCACHE="$cache_root/go/pkg/mod"
  export GOCACHE="$cache_root/go/cache"
  export CGO_ENABLED=0
  export GOFLAGS=-mod=readonly
}

# Everything that decides what a Route A build produces; a change means a rebuild.
go_stamp() {
  { cat "$module_dir/go.mod" "$module_dir/go.sum"; (cd "$module_dir" && go version); } | sha256sum | cut -d' ' -f1
}

build_go() {
  command -v go >/dev/null || die "Route A needs a Go toolchain (go 1.26+) on PATH"
  go_env
  local stamp; stamp=$(go_stamp)
  if [[ -f $k8s_cache/stamp && $(cat "$k8s_cache/stamp") == "$stamp" ]] \
    && [[ -x $bin_dir/etcd && -x $bin_dir/kube-apiserver && -x $bin_dir/kube-controller-manager && -x $bin_dir/kubectl ]]; then
    return 0
  fi
  mkdir -p "$k8s_cache"
  local out="$k8s_cache/bin.tmp" blog="$k8s_cache/build.log" start=$SECONDS
  rm -rf "$out"
  mkdir -p "$out"
  log "building Kubernetes $k8s_version (etcd, kube-apiserver, kube-controller-manager, kubectl) into $bin_dir"
  log "a cold build takes a while (~15 min on 2 cores); log: $blog"

  # The same version stamps Kubernetes' own build (hack/lib/version.sh) sets.
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  local date; date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' \
    "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$k8s_version.info" 2>/dev/null || true)
  local ldflags="-s -w" pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done

  (
    cd "$module_dir"
    go mod download
    timeout "$build_timeout_s" go build -buildvcs=false -ldflags "$ldflags" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl
    timeout "$build_timeout_s" go build -buildvcs=false -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  ) >"$blog" 2>&1 || { tail -n 30 "$blog" >&2; die "build failed, see $blog"; }

  rm -rf "$bin_dir"
  mv "$out" "$bin_dir"
  echo "$stamp" >"$k8s_cache/stamp"
  log "built in $((SECONDS - start)) s: $("$bin_dir/kube-apiserver" --version), etcd $("$bin_dir/etcd" --version | sed -n 's/^etcd Version: //p')"
}

# Route B: Kubernetes 1.20.2 from Debian bookworm's source package (see
# shared/notes/control-plane.md). Needs root for apt-get. etcd 3.4 and reflect2 1.0.2 are
# unpacked from their .deb files (apt-get download), so no etcd service gets installed.
build_debian_120() {
  if [[ -x $bin_dir/kube-apiserver && -x $bin_dir/kube-controller-manager && -x $bin_dir/etcd && -f $k8s_cache/stamp ]]; then
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "Route B installs Debian packages and needs root"
  mkdir -p "$k8s_cache"
  local blog="$k8s_cache/build.log" start=$SECONDS
  log "building Kubernetes v1.20.2 from Debian's source package into $bin_dir (log: $blog)"
  (
    set -x
    if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >/etc/apt/sources.list.d/tollgate-deb-src.sources
    fi
    apt-get update
    # golang-1.19-go (bookworm's Go) lives in /usr/lib/go-1.19 and does not touch `go` on PATH
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      golang-1.19-go rsync make dpkg-dev
    rm -rf "$k8s_cache/src" "$k8s_cache/debs" && mkdir -p "$k8s_cache/src" "$k8s_cache/debs"
    cd "$k8s_cache/debs"
    apt-get download etcd-server golang-github-modern-go-reflect2-dev
    for deb in ./*.deb; do dpkg-deb -x "$deb" "$k8s_cache/debs/root"; done
    cd "$k8s_cache/src"
    apt-get source --download-only kubernetes
    tar xzf kubernetes_*.orig.tar.gz
    cd "$(find . -mindepth 1 -maxdepth 1 -type d | head -n1)"
    # vendored reflect2 1.0.1 crashes kube-apiserver under Go >= 1.18 on the first CR create
    rm -rf vendor/github.com/modern-go/reflect2
    cp -r "$k8s_cache/debs/root/usr/share/gocode/src/github.com/modern-go/reflect2" vendor/github.com/modern-go/reflect2
    export PATH=/usr/lib/go-1.19/bin:$PATH GOFLAGS= GOTOOLCHAIN=local
    go version
    timeout "$build_timeout_s" make generated_files
    timeout "$build_timeout_s" make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl"
    rm -rf "$bin_dir.tmp" && mkdir -p "$bin_dir.tmp"
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager _output/bin/kubectl "$bin_dir.tmp/"
    cp "$k8s_cache/debs/root/usr/bin/etcd" "$bin_dir.tmp/etcd"
    rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir"
    cd "$k8s_cache" && rm -rf src debs  # ~2.4 GB with the tree's own Go cache; only bin/ is reused
  ) >"$blog" 2>&1 || { tail -n 30 "$blog" >&2; die "Route B build failed, see $blog"; }
  echo "debian-1.20.2" >"$k8s_cache/stamp"
  log "built in $((SECONDS - start)) s: $("$bin_dir/kube-apiserver" --version), etcd $("$bin_dir/etcd" --version | sed -n 's/^etcd Version: //p')"
}

ensure_binaries() {
  mkdir -p "$cache_root/k8s"
  exec 8>"$cache_root/k8s/.build.lock"
  flock -w "$build_timeout_s" 8 || die "another build holds $cache_root/k8s/.build.lock"
  case "$route" in
    go) build_go ;;
    debian-1.20) build_debian_120 ;;
  esac
  exec 8>&-
  kubectl="$bin_dir/kubectl"
  # Route B's kubectl is 1.20 (no --subresource); prefer a newer one from PATH there.
  if [[ $route == debian-1.20 ]] && command -v kubectl >/dev/null; then
    kubectl=$(command -v kubectl)
  fi
}

# ---------------------------------------------------------------------------------------------
# Processes

# The PID in run/<name>.pid if that process is alive and really is our <name> (its command
# line names our state directory); otherwise removes the stale PID file and fails.
pid_of() {
  local name=$1 pidfile="$run_dir/$1.pid" pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] \
    && [[ $(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1) == */"$name" ]] \
    && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- " $e2e_dir/"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start <name> <binary> args...: detached (own session), stdin/out/err away from the caller,
# so a test harness reading our output does not wait for the daemons.
start() {
  local name=$1; shift
  mkdir -p "$run_dir" "$log_dir"
  printf '\n=== %s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$log_dir/$name.log"
  rm -f "$run_dir/$name.pid"
  # The process closes every inherited descriptor above stderr (a caller's pipes, our lock
  # files), records its own PID (setsid may fork), then becomes the daemon.
  # shellcheck disable=SC2016
  setsid bash -c '
    pidfile=$1; shift
    for fd in /proc/$$/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    echo $$ >"$pidfile"
    exec "$@"' tollgate-e2e-start "$run_dir/$name.pid" "$@" \
    </dev/null >>"$log_dir/$name.log" 2>&1 8>&- 9>&- &
  local deadline=$((SECONDS + 10))
  until [[ -s $run_dir/$name.pid ]]; do
    ((SECONDS < deadline)) || die "$name did not start"
    sleep 0.05
  done
}

# alive <pid>: the process exists and is not a zombie
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

stop() {
  local name=$1 pid deadline
  pid=$(pid_of "$name") || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while alive "$pid"; do
    if ((SECONDS >= deadline + 10)); then
      die "$name (pid $pid) survives SIGKILL"
    elif ((SECONDS >= deadline)); then
      log "$name did not stop in 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$run_dir/$name.pid"
}

etcd_healthy() { curl -fsS -m 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"'; }
apiserver_ready() { [[ $(curl -fsS -m 3 --cacert "$pki/ca.crt" "$server/readyz" 2>/dev/null) == ok ]]; }
kcm_healthy() { [[ $(curl -fsSk -m 2 "https://127.0.0.1:$kcm_port/healthz" 2>/dev/null) == ok ]]; }

# wait_until <name> <check-function>: polls the check until it passes, the process dies or
# the deadline passes.
wait_until() {
  local name=$1 check=$2 deadline=$((SECONDS + timeout_s))
  until "$check"; do
    if ! pid_of "$name" >/dev/null; then
      tail -n 20 "$log_dir/$name.log" >&2 || true
      die "$name exited during start-up, log: $log_dir/$name.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$log_dir/$name.log" >&2 || true
      die "$name not ready after $timeout_s s, log: $log_dir/$name.log"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# PKI, users, kubeconfigs

ensure_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  (
    cd "$pki"
    if [[ ! -s ca.crt || ! -s ca.key ]]; then
      openssl genrsa -out ca.key 2048 2>/dev/null
      openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=tollgate-e2e-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.crt
      rm -f apiserver.crt
    fi
    if [[ ! -s apiserver.crt || ! -s apiserver.key ]]; then
      cat >apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$service_ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
      openssl genrsa -out apiserver.key 2048 2>/dev/null
      openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -sha256 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
      rm -f apiserver.csr
    fi
    if [[ ! -s sa.key || ! -s sa.pub ]]; then
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    fi
    if [[ ! -s tokens.csv ]]; then
      # token,user,uid,"group,group"
      {
        echo "$(openssl rand -hex 24),admin,tollgate-e2e-admin,\"system:masters\""
        echo "$(openssl rand -hex 24),alice,tollgate-e2e-alice,\"tollgate:approvers\""
        echo "$(openssl rand -hex 24),bob,tollgate-e2e-bob,\"tollgate:approvers\""
        echo "$(openssl rand -hex 24),carol,tollgate-e2e-carol,\"tollgate:platform\""
        echo "$(openssl rand -hex 24),system:kube-controller-manager,tollgate-e2e-kcm"
      } >tokens.csv.tmp
      mv tokens.csv.tmp tokens.csv
    fi
    chmod 600 ./*.key tokens.csv
  )
}

token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "$pki/tokens.csv"; }

# write_kubeconfig <file> <user> [namespace]
write_kubeconfig() {
  local file=$1 user=$2 ns=${3:-default} token
  token=$(token_of "$user")
  [[ -n $token ]] || die "no token for $user in $pki/tokens.csv"
  (
    umask 077
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tollgate-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: tollgate-e2e-$user
  context:
    cluster: tollgate-e2e
    user: $user
    namespace: $ns
current-context: tollgate-e2e-$user
EOF
    mv "$file.tmp" "$file"
  )
}

write_kubeconfigs() {
  write_kubeconfig "$e2e_dir/admin.kubeconfig" admin
  write_kubeconfig "$e2e_dir/to-alice.kubeconfig" alice "$namespace"
  write_kubeconfig "$e2e_dir/to-bob.kubeconfig" bob "$namespace"
  write_kubeconfig "$e2e_dir/platform-carol.kubeconfig" carol "$namespace"
  write_kubeconfig "$run_dir/kube-controller-manager.kubeconfig" system:kube-controller-manager
}

running_version() {
  curl -fsS -m 3 --cacert "$pki/ca.crt" "$server/version" 2>/dev/null \
    | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'
}

write_env() {
  local version kcm_on=0
  version=$(running_version)
  pid_of kube-controller-manager >/dev/null && kcm_on=1
  cat >"$env_file.tmp" <<EOF
# Written by tests/e2e/control-plane.sh up; source it. Valid while the control plane runs.
export TOLLGATE_E2E_DIR='$e2e_dir'
export TOLLGATE_E2E_SERVER='$server'
export TOLLGATE_E2E_K8S_VERSION='$version'
export TOLLGATE_E2E_K8S_ROUTE='$route'
export TOLLGATE_E2E_KUBECTL='$kubectl'
export TOLLGATE_E2E_BIN_DIR='$bin_dir'
export TOLLGATE_E2E_CA_CERT='$pki/ca.crt'
export TOLLGATE_E2E_CA_KEY='$pki/ca.key'
export TOLLGATE_E2E_ETCD_URL='http://127.0.0.1:$etcd_port'
export TOLLGATE_E2E_GC=$kcm_on
export TOLLGATE_E2E_NAMESPACE='$namespace'
export TOLLGATE_E2E_APPROVERS_GROUP='tollgate:approvers'
export TOLLGATE_E2E_ADMIN_KUBECONFIG='$e2e_dir/admin.kubeconfig'
export TOLLGATE_E2E_ADMIN_USER='admin'
export TOLLGATE_E2E_ALICE_KUBECONFIG='$e2e_dir/to-alice.kubeconfig'
export TOLLGATE_E2E_ALICE_USER='alice'
export TOLLGATE_E2E_BOB_KUBECONFIG='$e2e_dir/to-bob.kubeconfig'
export TOLLGATE_E2E_BOB_USER='bob'
export TOLLGATE_E2E_CAROL_KUBECONFIG='$e2e_dir/platform-carol.kubeconfig'
export TOLLGATE_E2E_CAROL_USER='carol'
EOF
  mv "$env_file.tmp" "$env_file"
}

apply_rbac() {
  local k=("$kubectl" --kubeconfig "$e2e_dir/admin.kubeconfig")
  "${k[@]}" apply -f "$repo_root/deploy/rbac.yaml" >/dev/null
  "${k[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
---
# Technical Operators decide Checkpoints in every namespace.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tollgate-e2e-approvers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: tollgate-approver
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: tollgate:approvers
---
# The platform user manages Projects in team-a and reads their Checkpoints.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: tollgate-e2e-carol-editor
  namespace: $namespace
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: tollgate-editor
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: carol
EOF
  if [[ $apply_crds == 1 ]] && compgen -G "$repo_root/crds/*.yaml" >/dev/null; then
    # Route B (1.20) knows no CEL rules (x-kubernetes-validations): skip client validation
    # there and the server drops them.
    # (1.20's server-side apply rejects them too, so apply client-side there)
    local how=(--server-side)
    [[ $route == debian-1.20 ]] && how=(--validate=false)
    "${k[@]}" apply "${how[@]}" -f "$repo_root/crds/" >/dev/null
    "${k[@]}" wait --for=condition=Established --timeout="${timeout_s}s" -f "$repo_root/crds/" >/dev/null
  fi
}

# ---------------------------------------------------------------------------------------------
# Components

start_etcd() {
  local extra=()
  "$bin_dir/etcd" --help 2>&1 | grep -q -- '--unsafe-no-fsync' && extra+=(--unsafe-no-fsync)
  if [[ $keep_data != 1 ]]; then rm -rf "$etcd_data"; fi
  mkdir -p "$etcd_data"
  chmod 700 "$etcd_data"
  start etcd "$bin_dir/etcd" \
    --name tollgate-e2e \
    --data-dir "$etcd_data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "tollgate-e2e=http://127.0.0.1:$etcd_peer_port" \
    --log-level warn \
    "${extra[@]}"
  wait_until etcd etcd_healthy
}

start_apiserver() {
  start kube-apiserver "$bin_dir/kube-apiserver" \
    --advertise-address 127.0.0.1 \
    --bind-address 127.0.0.1 \
    --secure-port "$apiserver_port" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --tls-cert-file "$pki/apiserver.crt" \
    --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --token-auth-file "$pki/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$service_cidr" \
    --endpoint-reconciler-type none \
    --cert-dir "$run_dir/apiserver-certs" \
    --profiling=false \
    --v 1
  wait_until kube-apiserver apiserver_ready
}

start_kcm() {
  start kube-controller-manager "$bin_dir/kube-controller-manager" \
    --kubeconfig "$run_dir/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$run_dir/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$run_dir/kube-controller-manager.kubeconfig" \
    --authentication-skip-lookup \
    --bind-address 127.0.0.1 \
    --secure-port "$kcm_port" \
    --cert-dir "$run_dir/kcm-certs" \
    --leader-elect=false \
    --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --service-cluster-ip-range "$service_cidr" \
    --controllers "${TOLLGATE_E2E_KCM_CONTROLLERS:-$kcm_controllers}" \
    --profiling=false \
    --v 1
  wait_until kube-controller-manager kcm_healthy
}

healthy() {
  pid_of etcd >/dev/null && etcd_healthy && pid_of kube-apiserver >/dev/null && apiserver_ready
}

# ---------------------------------------------------------------------------------------------
# Commands

lock_state() {
  mkdir -p "$e2e_dir"
  exec 9>"$e2e_dir/.lock"
  flock -w 600 9 || die "another control-plane.sh holds $e2e_dir/.lock"
}

cmd_up() {
  command -v curl >/dev/null || die "curl is required"
  command -v openssl >/dev/null || die "openssl is required"
  ensure_binaries
  lock_state
  local t0=${EPOCHREALTIME/[.,]/} running=""
  if healthy; then running=$(running_version); fi
  if [[ -n $running && $running != "$k8s_version" ]]; then
    log "Kubernetes $running runs in $e2e_dir but $k8s_version ($route) is wanted: restarting"
  fi
  if [[ -n $running && $running == "$k8s_version" ]]; then
    if [[ $with_kcm == 1 ]] && ! pid_of kube-controller-manager >/dev/null; then
      log "etcd and kube-apiserver are up; starting kube-controller-manager"
      start_kcm
    else
      log "already up"
    fi
    apply_rbac
  else
    rm -f "$env_file"
    # a failed start leaves nothing running
    trap 'rc=$?; if ((rc != 0)); then log "up failed; stopping what it started"; stop_all; fi' EXIT
    stop kube-controller-manager
    stop kube-apiserver
    stop etcd
    local port
    for port in "$etcd_port" "$etcd_peer_port" "$apiserver_port" $([[ $with_kcm == 1 ]] && echo "$kcm_port"); do
      port_busy "$port" && die "127.0.0.1:$port is in use by another process; set TOLLGATE_E2E_*_PORT"
    done
    ensure_pki
    mkdir -p "$run_dir"
    write_kubeconfigs
    log "starting etcd on 127.0.0.1:$etcd_port"
    start_etcd
    log "starting kube-apiserver $k8s_version on $server"
    start_apiserver
    apply_rbac
    if [[ $with_kcm == 1 ]]; then
      log "starting kube-controller-manager on 127.0.0.1:$kcm_port"
      start_kcm
    fi
  fi
  if pid_of kube-controller-manager >/dev/null; then echo 1; else echo "$with_kcm"; fi >"$run_dir/kcm-wanted"
  write_kubeconfigs
  write_env
  trap - EXIT
  local ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
  log "ready in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s: Kubernetes $(running_version) at $server; source $env_file"
}

stop_all() {
  rm -f "$env_file"
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
}

cmd_down() {
  lock_state
  stop_all
  log "down"
}

cmd_status() {
  local name pid rc=0 state
  echo "route:   $route ($k8s_version, binaries in $bin_dir)"
  echo "state:   $e2e_dir"
  for name in etcd kube-apiserver kube-controller-manager; do
    if pid=$(pid_of "$name"); then
      case $name in
        etcd) etcd_healthy && state=healthy || state=unhealthy ;;
        kube-apiserver) apiserver_ready && state=ready || state="not ready" ;;
        kube-controller-manager) kcm_healthy && state=healthy || state=unhealthy ;;
      esac
      printf '%-24s pid %-8s %s\n' "$name" "$pid" "$state"
      [[ $state == healthy || $state == ready ]] || rc=3
    else
      printf '%-24s not running\n' "$name"
      # kube-controller-manager counts only if the running instance was started with it
      if [[ $name != kube-controller-manager || $(cat "$run_dir/kcm-wanted" 2>/dev/null) != 0 ]]; then rc=3; fi
    fi
  done
  if pid_of kube-apiserver >/dev/null; then
    echo "server:  $server"
    echo "version: $(running_version)"
  fi
  if ((rc == 0)); then echo "env:     $env_file"; fi
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  build) ensure_binaries && log "binaries in $bin_dir" ;;
  env) [[ -f $env_file ]] && healthy && echo "$env_file" || die "control plane not up (run: $0 up)" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
