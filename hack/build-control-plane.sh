#!/usr/bin/env bash
# Build a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) and kwok from Go modules into a
# cache outside the repository, keyed by the versions in hack/versions.env.
#
# Why from modules: there is no Docker engine on our CI machines, so kind
# cannot run; envtest and kwokctl's binary runtime show the same binaries work
# on loopback.  k8s.io/kubernetes requires its staging modules at v0.0.0, so a
# plain `go install` fails; we build inside small wrapper modules that replace
# every staging module with its published v0.<minor>.<patch> release.
#
# Usage: hack/build-control-plane.sh          build or reuse; prints the bin dir
#        hack/build-control-plane.sh --print  print the bin dir only
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${ROLLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollback-controller}"
key="kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
out="$cache_root/$key"
bin="$out/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi

complete() {
  [[ -f "$out/.complete" ]] || return 1
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

if complete; then
  echo "control plane: reusing $bin" >&2
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "control plane: cannot build: the Go toolchain ('go') is not on PATH; install Go 1.26+ or set ROLLBACK_TEST_KUBECONFIG to use an existing cluster" >&2
  exit 3
fi

# The build is a single writer: a second concurrent invocation waits.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if complete; then
  echo "$bin"
  exit 0
fi

src="$out/src"
mkdir -p "$src" "$bin"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
start=$(date +%s)

# --- kube-apiserver, kube-controller-manager, kube-scheduler ---------------
kube_minor_patch="${KUBE_VERSION#v1.}"          # 37.2
staging_version="v0.${kube_minor_patch}"         # v0.37.2
kube_mod_json="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}")"
kube_gomod="$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' <<<"$kube_mod_json")"
go_directive="$(awk '/^go [0-9]/{print $2; exit}' "$kube_gomod")"
# Only staging modules that k8s.io/kubernetes requires (at v0.0.0) need a
# published release; the sample-* ones are replaced but never required.
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) v0.0.0$#\1#p' "$kube_gomod")

missing=()
for m in "${staging[@]}"; do
  go list -m -json "$m@$staging_version" >/dev/null 2>&1 || missing+=("$m")
done
if ((${#missing[@]})); then
  echo "control plane: the module proxy does not serve ${missing[*]} at $staging_version; pin an earlier KUBE_VERSION in hack/versions.env" >&2
  exit 3
fi

kdir="$src/kube"
mkdir -p "$kdir"
{
  echo "module rollbackcontroller.local/hack/kube"
  echo
  echo "go $go_directive"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  echo "tool ("
  echo "	k8s.io/kubernetes/cmd/kube-apiserver"
  echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
  echo "	k8s.io/kubernetes/cmd/kube-scheduler"
  echo ")"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
  echo ")"
} >"$kdir/go.mod"
(cd "$kdir" && go mod tidy)

major_minor="${KUBE_VERSION#v}"; major="${major_minor%%.*}"; rest="${major_minor#*.}"; minor="${rest%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor"
ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
echo "control plane: building Kubernetes $KUBE_VERSION (this takes 15-30 minutes on two cores)" >&2
(cd "$kdir" && go build -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler)

# --- etcd -------------------------------------------------------------------
edir="$src/etcd"
mkdir -p "$edir"
printf 'module rollbackcontroller.local/hack/etcd\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 %s\n\ntool go.etcd.io/etcd/server/v3\n' \
  "$go_directive" "$ETCD_VERSION" >"$edir/go.mod"
(cd "$edir" && go mod tidy && go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)

# --- kwok -------------------------------------------------------------------
wdir="$src/kwok"
mkdir -p "$wdir"
printf 'module rollbackcontroller.local/hack/kwok\n\ngo %s\n\nrequire sigs.k8s.io/kwok %s\n\ntool sigs.k8s.io/kwok/cmd/kwok\n' \
  "$go_directive" "$KWOK_VERSION" >"$wdir/go.mod"
(cd "$wdir" && go mod tidy && go build -ldflags "-s -w" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok)

for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || { echo "control plane: $b was not built" >&2; exit 3; }; done
echo "built in $(( $(date +%s) - start ))s" >"$out/.complete"
echo "control plane: built in $(( $(date +%s) - start ))s into $bin" >&2
echo "$bin"
