# Every aws_ecr_* resource of the Terraform AWS provider, pointed at ecrd.
#
#   ecrd serve --secrets-file examples/terraform/secrets.json &
#   cd examples/terraform && terraform init && terraform apply
#
# (`terraform init` downloads the provider, so it needs the network once;
# `python3 replay.py` makes the same API calls the provider makes, offline.)
#
# ecrd serves STS GetCallerIdentity on the same port, so the provider learns
# the account (000000000000 for the test/test key) as it does from AWS: keep
# skip_requesting_account_id off, since the registry-wide resources below use
# the account id as their id.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}

variable "endpoint" {
  description = "Where ecrd listens."
  type        = string
  default     = "http://localhost:4566"
}

provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    ecr = var.endpoint
    sts = var.endpoint
  }
}

data "aws_caller_identity" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
}

resource "aws_ecr_repository" "app" {
  name                 = "team/app"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = {
    env = "dev"
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "expire untagged images after 14 days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecr_repository_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowPull"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${local.account}:root" }
      Action    = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    }]
  })
}

resource "aws_ecr_registry_policy" "this" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ReplicateIn"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${local.account}:root" }
      Action    = ["ecr:ReplicateImage", "ecr:CreateRepository"]
      Resource  = "arn:aws:ecr:us-east-1:${local.account}:repository/*"
    }]
  })
}

# quay.io needs no credentials; Docker Hub does (a secret in --secrets-file).
resource "aws_ecr_pull_through_cache_rule" "quay" {
  ecr_repository_prefix = "quay"
  upstream_registry_url = "quay.io"
}

resource "aws_ecr_pull_through_cache_rule" "hub" {
  ecr_repository_prefix = "hub"
  upstream_registry_url = "registry-1.docker.io"
  credential_arn        = "arn:aws:secretsmanager:us-east-1:${local.account}:secret:ecr-pullthroughcache/hub"
}

resource "aws_ecr_repository_creation_template" "cache" {
  prefix               = "hub"
  description          = "repositories the Docker Hub cache creates"
  applied_for          = ["PULL_THROUGH_CACHE"]
  image_tag_mutability = "MUTABLE"

  encryption_configuration {
    encryption_type = "AES256"
  }

  lifecycle_policy = aws_ecr_lifecycle_policy.app.policy

  resource_tags = {
    source = "docker-hub"
  }
}

resource "aws_ecr_registry_scanning_configuration" "this" {
  scan_type = "ENHANCED"

  rule {
    scan_frequency = "CONTINUOUS_SCAN"
    repository_filter {
      filter      = "team/*"
      filter_type = "WILDCARD"
    }
  }
}

resource "aws_ecr_replication_configuration" "this" {
  replication_configuration {
    rule {
      destination {
        region      = "eu-west-1"
        registry_id = local.account
      }
      repository_filter {
        filter      = "team"
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}

resource "aws_ecr_account_setting" "registry_policy_scope" {
  name  = "REGISTRY_POLICY_SCOPE"
  value = "V2"
}

resource "aws_ecr_pull_time_update_exclusion" "ci" {
  principal_arn = "arn:aws:iam::${local.account}:role/ci"
}

resource "aws_ecr_signing_configuration" "this" {
  rule {
    signing_profile_arn = "arn:aws:signer:us-east-1:${local.account}:/signing-profiles/team"
    repository_filter {
      filter      = "team/*"
      filter_type = "WILDCARD_MATCH"
    }
  }
}

output "repository_url" {
  value = aws_ecr_repository.app.repository_url
}
