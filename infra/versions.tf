terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80.0, < 7.0.0"
    }
    # The PostgreSQL CA bundle layer (archive_file, main.tf).
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0, < 3.0.0"
    }
  }

  # State holds no secret values (secrets are created empty, see README), but it does hold
  # resource names: keep it in a private, encrypted, versioned backend. Configure at init:
  #   terraform init -backend-config=backend.hcl
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      project     = var.project
      environment = var.environment
      managed-by  = "terraform"
    })
  }
}
