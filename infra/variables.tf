# ---------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------
variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "eu-west-3"
}

variable "project" {
  description = "Name prefix. Function names are <project>-<stage>, e.g. reviews-extract: they must match the binaries in functions/ (cargo lambda builds target/lambda/<project>-<stage>/bootstrap.zip)."
  type        = string
  default     = "reviews"
}

variable "environment" {
  description = "Environment label (prod, staging, ...), used in resource names that must be unique per account (buckets, secrets)."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Lambda artifacts (cargo lambda build --release --output-format zip)
# ---------------------------------------------------------------------------------------------
variable "lambda_artifacts_dir" {
  description = "Directory holding <function>/bootstrap.zip, as written by `cargo lambda build --release --output-format zip` (target/lambda)."
  type        = string
  default     = "../target/lambda"
}

variable "lambda_architecture" {
  description = "x86_64 or arm64; must match the cargo lambda build target and the ONNX Runtime library in the score layer."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "score_layer_zip" {
  description = "Zip of the score function's layer (scripts/infra/build_score_layer.py): models/onnxruntime/libonnxruntime.so.1.31.1 and models/all-MiniLM-L6-v2/, mounted at /opt (REVIEWS_MODEL_DIR=/opt/models)."
  type        = string
  default     = "../target/lambda/score-layer.zip"
}

variable "score_ranker" {
  description = "Whether the score layer packs a ranker file (build_score_layer.py --ranker): the function then scores with the learned ranking (REVIEWS_RANKER=/opt/models/ranker.json) and refuses to start if the file is missing or was trained with another model."
  type        = bool
  default     = false
}

variable "functions" {
  description = "Per-function sizing. reserved_concurrency caps parallel invocations (the pipeline stages run one run at a time; score runs one Lambda per shard)."
  type = map(object({
    memory_mb            = number
    timeout_s            = number
    reserved_concurrency = number
  }))
  default = {
    extract   = { memory_mb = 1024, timeout_s = 900, reserved_concurrency = 1 }
    archive   = { memory_mb = 1024, timeout_s = 900, reserved_concurrency = 1 }
    transform = { memory_mb = 2048, timeout_s = 900, reserved_concurrency = 1 }
    score     = { memory_mb = 3008, timeout_s = 900, reserved_concurrency = 20 }
    publish   = { memory_mb = 1024, timeout_s = 300, reserved_concurrency = 1 }
    api       = { memory_mb = 1024, timeout_s = 10, reserved_concurrency = 50 }
  }
}

variable "rust_log" {
  description = "RUST_LOG for every function (tracing env-filter syntax, e.g. \"info,reviews_stages=debug\"); overrides log_level. Null: log_level applies."
  type        = string
  default     = null
}

variable "log_level" {
  description = "Application log level of every function (Lambda logging controls): TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}

# ---------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------
variable "schedule_expression" {
  description = "EventBridge schedule that starts the state machine (rate() or cron())."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "schedule_enabled" {
  description = "Whether the schedule starts executions."
  type        = bool
  default     = true
}

variable "buckets" {
  description = "Product buckets of the dataset (one merge + score Lambda per changed bucket). null: the live snapshot's count, else 64. Input {\"buckets\": n} overrides it per execution; another count re-buckets the dataset once."
  type        = number
  default     = null

  validation {
    # `? :`, not `||`: Terraform 1.11 evaluates both sides of `||` (null >= 1 is an error).
    condition     = var.buckets == null ? true : (var.buckets >= 1 && var.buckets <= 4096)
    error_message = "buckets must be null or from 1 to 4096."
  }
}

variable "map_max_concurrency" {
  description = "Map MaxConcurrency: scoring Lambdas running at once (0 = no limit). Keep <= functions.score.reserved_concurrency."
  type        = number
  default     = 20
}

variable "alarm_email" {
  description = "Optional e-mail subscribed to the alarm topic (failed executions, archive deferred). Empty: no subscription."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# External databases and the network
# ---------------------------------------------------------------------------------------------
variable "postgres_endpoint" {
  description = "host:port of the external PostgreSQL 15 (source). Informational: the connection URI with the etl_reader credentials is the secret's value, set out of band."
  type        = string
}

variable "postgres_ca_bundle" {
  description = "Path (on the deploying machine, relative to infra/) of the PEM file of the CA certificates the extract function verifies PostgreSQL's server certificate against (TLS verify-full), e.g. the RDS global bundle from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem. Packaged as a layer mounted at /opt/postgres-ca/ca-bundle.pem (REVIEWS_PG_SSLROOTCERT), used when the secret's URI names no sslrootcert (an RDS-managed JSON secret never does)."
  type        = string
  nullable    = false

  validation {
    condition     = length(trimspace(var.postgres_ca_bundle)) > 0 && endswith(var.postgres_ca_bundle, ".pem")
    error_message = "postgres_ca_bundle must be the path of a PEM file, ending with .pem."
  }
}

variable "secret_ttl_seconds" {
  description = "Seconds extract and archive keep a database secret's value before reading it again from Secrets Manager (REVIEWS_SECRET_TTL_SECS); they also read it again at once after a refused login."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.secret_ttl_seconds >= 0 && var.secret_ttl_seconds <= 86400 && floor(var.secret_ttl_seconds) == var.secret_ttl_seconds
    error_message = "secret_ttl_seconds must be a whole number of seconds from 0 to 86400."
  }
}

variable "mongodb_endpoint" {
  description = "host:port of the external MongoDB (archive). Informational, as above."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the pipeline Lambdas (where PostgreSQL and MongoDB are reachable)."
  type        = string
}

variable "vpc_subnet_ids" {
  description = "Private subnets for the pipeline Lambdas (at least two AZs)."
  type        = list(string)
}

variable "vpc_security_group_ids" {
  description = "Security groups of the pipeline Lambdas; they must allow egress to the databases (5432, 27017) and 443 to the VPC endpoints."
  type        = list(string)
}

variable "vpc_route_table_ids" {
  description = "Route tables of vpc_subnet_ids, for the S3 gateway endpoint. Empty: no endpoints are created (the VPC already routes to S3 and Secrets Manager)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Lake, logs, API, storefront
# ---------------------------------------------------------------------------------------------
variable "raw_expiration_days" {
  description = "Days after which raw/ objects expire (MongoDB keeps the archive). raw/ moves to Standard-IA at 30 days."
  type        = number
  default     = 90

  validation {
    condition     = var.raw_expiration_days > 30
    error_message = "raw_expiration_days must be more than 30 (the Standard-IA transition day)."
  }
}

variable "rejects_expiration_days" {
  description = "Days after which rejects/ objects expire."
  type        = number
  default     = 180
}

variable "noncurrent_version_days" {
  description = "Days a previous (overwritten or deleted) object version is kept, for rollback."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for functions, state machine and API access logs."
  type        = number
  default     = 365
}

variable "admin_principal_arns" {
  description = "IAM principals (users/roles) allowed to assume the administrator role (with MFA)."
  type        = list(string)
  default     = []
}

variable "api_throttle_rate" {
  description = "API Gateway steady-state requests per second."
  type        = number
  default     = 200
}

variable "api_throttle_burst" {
  description = "API Gateway burst."
  type        = number
  default     = 400
}

variable "frontend_dir" {
  description = "Static storefront files uploaded to the storefront bucket."
  type        = string
  default     = "../frontend"
}

variable "storefront_acm_certificate_arn" {
  description = "Optional ACM certificate (us-east-1) for a custom storefront domain; empty: the CloudFront default certificate."
  type        = string
  default     = ""
}

variable "storefront_aliases" {
  description = "Custom domain names of the storefront (need storefront_acm_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "storefront_web_acl_arn" {
  description = "Optional WAFv2 web ACL (scope CLOUDFRONT) for the storefront distribution."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Analytics (Glue table + Athena workgroup over the live curated snapshot)
# ---------------------------------------------------------------------------------------------
variable "analyst_principal_arns" {
  description = "IAM principals (users/roles) allowed to assume the analyst role (with MFA); empty: the account's IAM decides."
  type        = list(string)
  default     = []
}

variable "athena_results_expiration_days" {
  description = "Days after which Athena query results expire in the results bucket."
  type        = number
  default     = 30
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes one query of the analytics workgroup may scan before Athena cancels it (at least 10 MB)."
  type        = number
  default     = 10737418240
}

variable "no_publish_hours" {
  description = "Alarm when no run has published for this many hours (1 to 24)."
  type        = number
  default     = 24
}

variable "api_5xx_threshold" {
  description = "Alarm when the HTTP API answers at least this many 5xx in 5 minutes."
  type        = number
  default     = 5
}

variable "api_latency_p99_ms" {
  description = "Alarm when the HTTP API's p99 latency stays above this (ms) for 15 minutes."
  type        = number
  default     = 1000
}
