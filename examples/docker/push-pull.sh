#!/usr/bin/env bash
# docker login / build / push / pull against ecrd, offline: the image is built
# `FROM scratch` with one file, so nothing is pulled from anywhere.
#
#   ecrd serve &
#   examples/docker/push-pull.sh            # ECRD_ENDPOINT=http://localhost:PORT for another port
#
# docker talks plain HTTP to `localhost:*` registries, so no TLS set-up is
# needed. The script uses whatever docker daemon DOCKER_HOST (or the default
# socket) names. It creates the repository `quickstart/docker` and deletes it
# at the end.
set -euo pipefail

ENDPOINT="${ECRD_ENDPOINT:-http://localhost:4566}"
REGISTRY="localhost:${ENDPOINT##*:}"          # the registry host ecrd names by default
IMAGE="$REGISTRY/quickstart/docker:v1"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# The classic builder needs no buildx plugin and no network.
export DOCKER_BUILDKIT=0

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
echo "hello from ecrd" > "$CTX/hello.txt"
printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' > "$CTX/Dockerfile"

aws --endpoint-url "$ENDPOINT" ecr create-repository --repository-name quickstart/docker
aws --endpoint-url "$ENDPOINT" ecr get-login-password \
  | docker login --username AWS --password-stdin "$REGISTRY"
docker build -t "$IMAGE" "$CTX"
docker push "$IMAGE"
aws --endpoint-url "$ENDPOINT" ecr describe-images --repository-name quickstart/docker

# Pull it back from the registry, not from the local image store.
docker image rm "$IMAGE"
docker pull "$IMAGE"
docker image inspect --format '{{index .RepoDigests 0}}' "$IMAGE"

docker image rm "$IMAGE"
docker logout "$REGISTRY"
aws --endpoint-url "$ENDPOINT" ecr delete-repository --repository-name quickstart/docker --force \
  --query 'repository.repositoryName' --output text
