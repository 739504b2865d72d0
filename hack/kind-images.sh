#!/usr/bin/env bash
# Load the e2e suite's images into a kind cluster (used by `make kind-test`).
#
# On the local control plane kwok decides how a pod behaves from its image tag;
# on kind a real kubelet runs real images, so we give the conventional names
# real content (see docs/testing.md):
#   registry.example/<app>:vN              -> pause: runs, Ready
#   registry.example/migrate:vN            -> busybox `true`: a Job that completes
#   registry.example/<app>:vN-crashloop    -> busybox `exit 1`: CrashLoopBackOff
#   registry.example/<app>:vN-broken       -> not loaded: ErrImagePull, never Ready
# Usage: hack/kind-images.sh CLUSTER_NAME
set -euo pipefail
cluster="${1:?usage: hack/kind-images.sh CLUSTER_NAME}"
kind="${KIND:-kind}"
apps=(web api worker frontend backend)
tags=(v1 v2 v3 v4 v5 v6 v7 v8 v9)
pause=registry.k8s.io/pause:3.10
busybox=docker.io/library/busybox:1.37

docker pull -q "$pause" >/dev/null
docker pull -q "$busybox" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'FROM %s\nCMD ["sh", "-c", "exit 1"]\n' "$busybox" >"$work/Dockerfile.crash"
printf 'FROM %s\nCMD ["true"]\n' "$busybox" >"$work/Dockerfile.done"
docker build -q -t rollback-e2e/crashloop -f "$work/Dockerfile.crash" "$work" >/dev/null
docker build -q -t rollback-e2e/done -f "$work/Dockerfile.done" "$work" >/dev/null

images=()
for tag in "${tags[@]}"; do
  for app in "${apps[@]}"; do
    docker tag "$pause" "registry.example/$app:$tag"
    docker tag rollback-e2e/crashloop "registry.example/$app:$tag-crashloop"
    images+=("registry.example/$app:$tag" "registry.example/$app:$tag-crashloop")
  done
  docker tag rollback-e2e/done "registry.example/migrate:$tag"
  docker tag rollback-e2e/crashloop "registry.example/migrate:$tag-crashloop"
  images+=("registry.example/migrate:$tag" "registry.example/migrate:$tag-crashloop")
done
"$kind" load docker-image --name "$cluster" "${images[@]}"
