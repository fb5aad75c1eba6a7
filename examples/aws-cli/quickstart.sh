#!/usr/bin/env bash
# The README's AWS CLI quick start, runnable: against an ecrd at $ECRD_ENDPOINT
# (default http://localhost:4566, as `ecrd serve` starts), with the built-in
# test/test credentials.
#
#   ecrd serve &
#   examples/aws-cli/quickstart.sh
#
# It creates team/app, so run it against a fresh server, or reset one first:
# curl -X POST http://localhost:4566/_ecrd/reset
set -euo pipefail

ENDPOINT="${ECRD_ENDPOINT:-http://localhost:4566}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
# No pager, no profile from ~/.aws: the example behaves the same on every machine.
export AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

aws --endpoint-url "$ENDPOINT" ecr create-repository \
    --repository-name team/app --image-scanning-configuration scanOnPush=true \
    --tags Key=env,Value=dev
aws --endpoint-url "$ENDPOINT" ecr describe-repositories
aws --endpoint-url "$ENDPOINT" ecr get-login-password

# The same repository, by name, with its tags: what create-repository set.
aws --endpoint-url "$ENDPOINT" ecr describe-repositories --repository-names team/app \
    --query 'repositories[0].[repositoryName,imageScanningConfiguration.scanOnPush]' --output text
ARN=$(aws --endpoint-url "$ENDPOINT" ecr describe-repositories --repository-names team/app \
    --query 'repositories[0].repositoryArn' --output text)
aws --endpoint-url "$ENDPOINT" ecr list-tags-for-resource --resource-arn "$ARN" \
    --query 'tags[0].[Key,Value]' --output text

# A name that does not exist answers ECR's RepositoryNotFoundException.
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
if aws --endpoint-url "$ENDPOINT" ecr describe-repositories --repository-names missing 2>"$ERR"; then
    echo "describe-repositories of a missing name succeeded" >&2
    exit 1
fi
grep RepositoryNotFoundException "$ERR"
