# The reviews pipeline on AWS (DESIGN sections 1-3): lake bucket, secrets, IAM roles, the stage
# Lambdas, the Step Functions state machine and its schedule, the HTTP API and the storefront.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  prefix     = var.project

  # Stage functions of the state machine (binary = reviews-<stage>, function = <project>-<stage>).
  pipeline_stages = {
    extract   = "PostgreSQL -> raw/ (incremental by watermark)"
    archive   = "raw/ -> MongoDB archive (and the backlog of earlier runs)"
    transform = "raw/ -> cleaned/ part files + rejects/ (transform + load cleaned)"
    score     = "one product bucket: carried rows + changes -> cleaned/ and curated/ (zero-shot topics for new texts + relevance)"
    publish   = "validate the curated run, then move curated/_latest.json"
  }
  function_names = { for s in concat(keys(local.pipeline_stages), ["api"]) : s => "${local.prefix}-${s}" }
  zip_paths      = { for s in concat(keys(local.pipeline_stages), ["api"]) : s => "${var.lambda_artifacts_dir}/reviews-${s}/bootstrap.zip" }
  log_group_arns = {
    for s, n in local.function_names : s => "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${n}"
  }

  lake_bucket       = "${local.prefix}-${var.environment}-lake-${local.account_id}"
  storefront_bucket = "${local.prefix}-${var.environment}-storefront-${local.account_id}"
  model_dir         = "/opt/models"
  ort_dylib_path    = "/opt/models/onnxruntime/libonnxruntime.so.1.31.1"

  common_env = merge(
    { REVIEWS_LAKE_URI = "s3://${module.lake.bucket_name}" },
    var.rust_log == null ? {} : { RUST_LOG = var.rust_log },
  )
  pipeline_env = merge(local.common_env, {
    REVIEWS_PG_SECRET_ID    = aws_secretsmanager_secret.postgres.name
    REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name
  })
  stage_env = {
    extract   = local.pipeline_env
    archive   = local.pipeline_env
    transform = local.pipeline_env
    score     = merge(local.pipeline_env, { REVIEWS_MODEL_DIR = local.model_dir, ORT_DYLIB_PATH = local.ort_dylib_path })
    publish   = local.pipeline_env
  }
}

# ----------------------------------------------------------------------------------------------
# Encryption key (logs, secrets, Lambda environment, alarm topic) and the lake
# ----------------------------------------------------------------------------------------------
module "kms" {
  source = "./modules/kms"
  name   = "${local.prefix}-${var.environment}"
}

module "lake" {
  source                  = "./modules/lake"
  bucket_name             = local.lake_bucket
  account_id              = local.account_id
  raw_expiration_days     = var.raw_expiration_days
  rejects_expiration_days = var.rejects_expiration_days
  noncurrent_version_days = var.noncurrent_version_days
}

# ----------------------------------------------------------------------------------------------
# Secrets: created EMPTY. Terraform never sees their values, so neither the state nor the outputs
# hold them. Set them out of band (infra/README.md):
#   aws secretsmanager put-secret-value --secret-id <name> --secret-string 'postgres://...'
# ----------------------------------------------------------------------------------------------
resource "aws_secretsmanager_secret" "postgres" {
  #checkov:skip=CKV2_AWS_57:The databases are external (not RDS); their passwords are rotated by their owners, then written here with put-secret-value. No rotation Lambda exists for them.
  name                    = "${local.prefix}/${var.environment}/postgres"
  description             = "Connection URI of the read-only etl_reader role on PostgreSQL ${var.postgres_endpoint}"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "mongodb" {
  #checkov:skip=CKV2_AWS_57:External MongoDB; its writer user's password is rotated by its owner, then written here with put-secret-value.
  name                    = "${local.prefix}/${var.environment}/mongodb"
  description             = "Connection URI of the archive writer user on MongoDB ${var.mongodb_endpoint}"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

# ----------------------------------------------------------------------------------------------
# IAM (DESIGN section 3)
# ----------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Pipeline worker: read/write raw/, rejects/, cleaned/, curated/ and state/; its two secrets.
# (PostgreSQL read-only and MongoDB write are database roles: etl_reader and the archive writer,
# whose URIs are the secrets' values.)
resource "aws_iam_role" "pipeline_worker" {
  name               = "${local.prefix}-${var.environment}-pipeline-worker"
  description        = "Stage Lambdas: lake read/write (raw, rejects, cleaned, curated, state), database secrets"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "pipeline_worker" {
  statement {
    sid       = "ListLakePrefixes"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for p in module.lake.data_prefixes : [p, "${p}*"]])
    }
  }

  statement {
    sid = "ReadWriteLakeObjects"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = [for p in module.lake.data_prefixes : "${module.lake.bucket_arn}/${p}*"]
  }

  statement {
    sid       = "ReadDatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.postgres.arn, aws_secretsmanager_secret.mongodb.arn]
  }

  statement {
    sid       = "DecryptSecretsAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for s in keys(local.pipeline_stages) : "${local.log_group_arns[s]}:*"]
  }
}

resource "aws_iam_role_policy" "pipeline_worker" {
  name   = "lake-and-secrets"
  role   = aws_iam_role.pipeline_worker.id
  policy = data.aws_iam_policy_document.pipeline_worker.json
}

resource "aws_iam_role_policy_attachment" "pipeline_worker_vpc" {
  role       = aws_iam_role.pipeline_worker.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy_attachment" "pipeline_worker_xray" {
  role       = aws_iam_role.pipeline_worker.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# API (read-only): s3:GetObject and s3:ListBucket on curated/ ONLY (scripts/infra-check.sh checks
# that nothing else of the lake, no secret and no other service is granted), plus its own logs,
# traces and the decryption of its environment.
resource "aws_iam_role" "api" {
  name               = "${local.prefix}-${var.environment}-api-readonly"
  description        = "reviews-api Lambda: read-only on curated/"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "ListCurated"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["curated/", "curated/*"]
    }
  }

  statement {
    sid       = "ReadCurated"
    actions   = ["s3:GetObject"]
    resources = ["${module.lake.bucket_arn}/curated/*"]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arns["api"]}:*"]
  }

  statement {
    sid       = "DecryptEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "curated-read-only"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_iam_role_policy_attachment" "api_xray" {
  role       = aws_iam_role.api.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# Administrator: operates Step Functions and reads/manages the logs and alarms; reads raw/ and
# rejects/ (to investigate rejected rows, DESIGN section 3); no cleaned/ or curated/, no secret
# value, no database.
data "aws_iam_policy_document" "assume_admin" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.admin_principal_arns) > 0 ? var.admin_principal_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    condition {
      test     = "Bool"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role" "admin" {
  name                 = "${local.prefix}-${var.environment}-administrator"
  description          = "Operates the pipeline: Step Functions, logs, alarms; reads raw/ and rejects/"
  assume_role_policy   = data.aws_iam_policy_document.assume_admin.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "admin" {
  statement {
    sid     = "OperateStateMachine"
    actions = ["states:*"]
    resources = [
      module.state_machine.arn,
      "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.prefix}-pipeline:*",
      "arn:${local.partition}:states:${local.region}:${local.account_id}:mapRun:${local.prefix}-pipeline/*",
    ]
  }

  statement {
    sid       = "ListStateMachines"
    actions   = ["states:ListStateMachines", "states:ListActivities"]
    resources = ["*"]
  }

  statement {
    sid     = "ManageProjectLogs"
    actions = ["logs:*"]
    resources = concat(
      [for arn in values(local.log_group_arns) : "${arn}:*"],
      ["${module.state_machine.log_group_arn}:*", "${module.api.access_log_group_arn}:*"],
    )
  }

  statement {
    sid = "QueryLogsAndMetrics"
    actions = [
      "logs:DescribeLogGroups", "logs:DescribeQueries", "logs:StopQuery",
      "cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
    ]
    resources = ["*"] # these actions support no resource-level scoping
  }

  statement {
    sid       = "ReadProjectAlarms"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.prefix}-*"]
  }

  statement {
    sid       = "ListRawAndRejects"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["raw/", "raw/*", "rejects/", "rejects/*"]
    }
  }

  statement {
    sid       = "ReadRawAndRejects"
    actions   = ["s3:GetObject"]
    resources = ["${module.lake.bucket_arn}/raw/*", "${module.lake.bucket_arn}/rejects/*"]
  }
}

resource "aws_iam_role_policy" "admin" {
  name   = "operate-pipeline"
  role   = aws_iam_role.admin.id
  policy = data.aws_iam_policy_document.admin.json
}

# ----------------------------------------------------------------------------------------------
# Lambdas
# ----------------------------------------------------------------------------------------------
# The score function's ONNX Runtime library and model, as a layer mounted at /opt (the layout of
# the repository's models/ directory, built by scripts/infra/build_score_layer.py):
#   /opt/models/onnxruntime/libonnxruntime.so.1.31.1   (PyPI onnxruntime==1.31.1, glibc <= 2.28: fits AL2023)
#   /opt/models/all-MiniLM-L6-v2/{model.onnx,tokenizer.json,config.json}
# Uploaded through S3: with the fp32 model the archive exceeds the 50 MB direct-upload limit.
resource "aws_s3_object" "score_layer" {
  bucket      = module.lake.artifacts_bucket_name
  key         = "layers/${local.prefix}-score-onnxruntime-model.zip"
  source      = var.score_layer_zip
  source_hash = filemd5(var.score_layer_zip)
}

resource "aws_lambda_layer_version" "score_runtime" {
  layer_name               = "${local.prefix}-score-onnxruntime-model"
  description              = "ONNX Runtime 1.31.1 + model for ${local.prefix}-score"
  s3_bucket                = aws_s3_object.score_layer.bucket
  s3_key                   = aws_s3_object.score_layer.key
  s3_object_version        = aws_s3_object.score_layer.version_id
  source_code_hash         = filebase64sha256(var.score_layer_zip)
  compatible_runtimes      = ["provided.al2023"]
  compatible_architectures = [var.lambda_architecture]
}

module "stage" {
  source   = "./modules/lambda_function"
  for_each = local.pipeline_stages

  name                   = local.function_names[each.key]
  description            = each.value
  zip_path               = local.zip_paths[each.key]
  role_arn               = aws_iam_role.pipeline_worker.arn
  architecture           = var.lambda_architecture
  memory_mb              = var.functions[each.key].memory_mb
  timeout_s              = var.functions[each.key].timeout_s
  reserved_concurrency   = var.functions[each.key].reserved_concurrency
  environment            = local.stage_env[each.key]
  layer_arns             = each.key == "score" ? [aws_lambda_layer_version.score_runtime.arn] : []
  vpc_subnet_ids         = var.vpc_subnet_ids
  vpc_security_group_ids = var.vpc_security_group_ids
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
  log_level              = var.log_level

  depends_on = [aws_iam_role_policy.pipeline_worker, aws_iam_role_policy_attachment.pipeline_worker_vpc]
}

module "api_function" {
  source = "./modules/lambda_function"

  name                 = local.function_names["api"]
  description          = "GET /health, GET /reviews/{product_id}/top (lambda_http, HTTP API payload v2)"
  zip_path             = local.zip_paths["api"]
  role_arn             = aws_iam_role.api.arn
  architecture         = var.lambda_architecture
  memory_mb            = var.functions["api"].memory_mb
  timeout_s            = var.functions["api"].timeout_s
  reserved_concurrency = var.functions["api"].reserved_concurrency
  environment = merge(local.common_env, {
    # Product buckets held in memory: half the function's memory.
    REVIEWS_API_CACHE_MB = tostring(floor(var.functions["api"].memory_mb / 2))
    REVIEWS_CORS_ORIGIN  = module.storefront.url
  })
  # Not in the VPC: it reads only S3 (curated/) and reaches no database.
  vpc_subnet_ids     = null
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  log_level          = var.log_level

  depends_on = [aws_iam_role_policy.api]
}

module "network" {
  source = "./modules/network"
  count  = length(var.vpc_route_table_ids) > 0 ? 1 : 0

  name                      = "${local.prefix}-${var.environment}"
  vpc_id                    = var.vpc_id
  subnet_ids                = var.vpc_subnet_ids
  route_table_ids           = var.vpc_route_table_ids
  client_security_group_ids = var.vpc_security_group_ids
}

# ----------------------------------------------------------------------------------------------
# Orchestration, alarms, API, storefront
# ----------------------------------------------------------------------------------------------
resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-${var.environment}-alarms"
  kms_master_key_id = module.kms.key_arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "state_machine" {
  source = "./modules/state_machine"

  name                = "${local.prefix}-pipeline"
  asl_path            = "${path.root}/../statemachine.asl.json"
  function_arns       = { for s in keys(local.pipeline_stages) : s => module.stage[s].arn }
  buckets             = var.buckets
  map_max_concurrency = var.map_max_concurrency
  lake_bucket_name    = module.lake.bucket_name
  schedule_expression = var.schedule_expression
  schedule_enabled    = var.schedule_enabled
  kms_key_arn         = module.kms.key_arn
  log_retention_days  = var.log_retention_days
  alarm_topic_arn     = aws_sns_topic.alarms.arn
  no_publish_hours    = var.no_publish_hours
}

module "api" {
  source = "./modules/api"

  name                = "${local.prefix}-api"
  function_name       = module.api_function.function_name
  function_invoke_arn = module.api_function.invoke_arn
  cors_origins        = concat([module.storefront.url], [for a in var.storefront_aliases : "https://${a}"])
  throttle_rate       = var.api_throttle_rate
  throttle_burst      = var.api_throttle_burst
  kms_key_arn         = module.kms.key_arn
  log_retention_days  = var.log_retention_days
}

module "storefront" {
  source = "./modules/storefront"

  name                = local.prefix
  bucket_name         = local.storefront_bucket
  logs_bucket_name    = module.lake.logs_bucket_name
  frontend_dir        = var.frontend_dir
  api_endpoint        = module.api.endpoint
  acm_certificate_arn = var.storefront_acm_certificate_arn
  aliases             = var.storefront_aliases
  web_acl_arn         = var.storefront_web_acl_arn
}
