# The reviews pipeline on AWS (docs/ARCHITECTURE.md sections 1, 3 and 5): lake bucket, secrets,
# IAM roles, the stage Lambdas, the Step Functions state machine and its schedule, the HTTP API
# and the storefront.

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
  # Every function: the stages, any other function with an execution role of its own
  # (local.function_grants, IAM section: erase, infra/erasure.tf), and the API.
  function_names = { for s in concat(keys(local.function_grants), ["api"]) : s => "${local.prefix}-${s}" }
  zip_paths      = { for s in concat(keys(local.function_grants), ["api"]) : s => "${var.lambda_artifacts_dir}/reviews-${s}/bootstrap.zip" }
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
  # The model and ONNX Runtime from the score layer, and the learned ranking when the layer
  # packs one (build_score_layer.py --ranker, var.score_ranker).
  score_env = merge(local.common_env,
    { REVIEWS_MODEL_DIR = local.model_dir, ORT_DYLIB_PATH = local.ort_dylib_path },
  var.score_ranker ? { REVIEWS_RANKER = "/opt/models/ranker.json" } : {})

  # Each stage gets the name of the one secret it reads (functions/README.md), no other, and how
  # long it keeps the secret's value (REVIEWS_SECRET_TTL_SECS); extract also gets the CA bundle
  # it verifies PostgreSQL's certificate against, from its layer (aws_lambda_layer_version.postgres_ca).
  stage_env = {
    extract = merge(local.common_env, {
      REVIEWS_PG_SECRET_ID    = aws_secretsmanager_secret.postgres.name
      REVIEWS_PG_SSLROOTCERT  = "/opt/postgres-ca/ca-bundle.pem"
      REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds)
    })
    archive = merge(local.common_env, {
      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name
      REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds)
    })
    transform = local.common_env
    score     = local.score_env
    publish   = local.common_env
    # Not a stage (infra/erasure.tf): it reads the archive writer's secret, as archive does.
    erase = merge(local.common_env, {
      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name
      REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds)
    })
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
# IAM (docs/ARCHITECTURE.md section 5): one execution role per function, the API role, the
# administrator
# ----------------------------------------------------------------------------------------------
locals {
  database_secret_arns = {
    postgres = aws_secretsmanager_secret.postgres.arn
    mongodb  = aws_secretsmanager_secret.mongodb.arn
  }

  # Function name -> ARN, built from the name rather than taken from the module (the function
  # depends on its role, so its role's policy cannot depend on the function).
  function_arns = {
    for s, n in local.function_names : s => "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${n}"
  }

  lake_actions = {
    read   = ["s3:GetObject"] # also authorises HeadObject
    write  = ["s3:PutObject"] # single PUTs: the lake client never uploads in parts
    delete = ["s3:DeleteObject"]
    # DeleteObject of one version: the earlier versions the versioned lake keeps of an object
    # an erasure rewrote or deleted (crates/lake/src/s3.rs delete_earlier_versions)
    purge = ["s3:DeleteObjectVersion"]
  }

  # What each function may do, read from its Rust code (functions/<name>, crates/stages,
  # crates/postgres/src/extract.rs, crates/archive, crates/lake/src/state.rs). Patterns are object
  # keys under the lake bucket; `run=*` stands for any run, as IAM cannot name "this execution's
  # run". Fields:
  #   secrets     database secrets whose value it reads (keys of local.database_secret_arns);
  #               also the only principals their resource policy lets read them (below)
  #   bucket      actions on the lake bucket itself beyond the s3:ListBucket every function has
  #               (s3:ListBucketVersions: ListObjectVersions, to find the versions to purge)
  #   lake        read (s3:GetObject), write (s3:PutObject), delete (s3:DeleteObject) and
  #               purge (s3:DeleteObjectVersion: earlier versions) key patterns
  # Every function role also lists the whole lake bucket (s3:ListBucket without an s3:prefix
  # condition, data.aws_iam_policy_document.function below): the keys it reads that may not
  # exist yet ("none yet" comments) must answer 404, not 403.
  # Only extract fixes a run's base (state/runs/run=<id>/base.json, on the first attempt); the
  # others read it, and the write their shared run_base() would make if it were missing is
  # refused on purpose. Only extract takes the run lease; publish checks and releases it.
  # Adding a function (as erase): one entry here, then its lambda_function module with
  # name = local.function_names["<name>"], role_arn = aws_iam_role.function["<name>"].arn.
  # scripts/infra-check.sh checks each entry against the matrix in infra/README.md.
  function_grants = {
    extract = {
      secrets = ["postgres"] # the etl_reader URI (REVIEWS_PG_SECRET_ID)
      bucket  = []
      # lists raw/run=<id>/ (the parts of an earlier attempt, to delete those beyond this one's)
      lake = {
        read = [
          "state/lease.json",              # acquire_lease (none yet: the first run); release_lease when the extract fails
          "state/runs/run=*/base.json",    # run_base: the commit the run builds on (none yet: a run's first attempt)
          "state/runs/run=*/extract.json", # a re-run extracts its recorded range again (none yet: the first attempt)
          "curated/_latest.json",          # run_base: the live commit and its watermark (none yet: nothing published)
        ]
        write = [
          "state/lease.json",
          "state/runs/run=*/base.json",
          "state/runs/run=*/extract.json", # the range read, written after raw/
          "raw/run=*/part-*.parquet",      # the rows, as read
          "raw/run=*/deletions.json",      # reviews deleted at the source since the watermark
        ]
        delete = ["raw/run=*/part-*.parquet"] # parts an earlier attempt of the run wrote beyond this one's
      }
    }
    archive = {
      secrets = ["mongodb"] # the archive writer's URI (REVIEWS_MONGO_SECRET_ID)
      bucket  = []
      # lists raw/ (the backlog: every run with raw parts), raw/run=<id>/ (one run's parts) and
      # state/archived/ (the runs already archived)
      lake = {
        read = [
          "raw/run=*/*.parquet",        # the raw parts it upserts into MongoDB (its run and the backlog)
          "state/runs/run=*/base.json", # the backlog's order: each run's start time
        ]
        write = ["state/archived/run=*.json"] # the marker: all of the run's rows are archived
      }
    }
    transform = {
      secrets = []
      bucket  = []
      # lists cleaned/run=<id>/, curated/run=<id>/, rejects/run=<id>/ (what an earlier attempt of
      # the run left; a legacy base's cleaned parts)
      lake = {
        read = [
          "raw/run=*/part-*.parquet",      # route: the part to clean
          "raw/run=*/deletions.json",      # plan: reviews deleted at the source
          "state/runs/run=*/base.json",    # run_base
          "state/erased_buyers.json",      # erased buyers never reach cleaned/ (none yet: nobody erased)
          "state/runs/run=*/route-*.json", # plan: the parts' route records
          "state/runs/run=*/cleaned.json", # re-bucketing a legacy base: its cleaned record
          "curated/run=*/_manifest.json",  # a base recorded without its snapshot: the live run's manifest
          "cleaned/run=*/*.parquet",       # re-bucketing: the base snapshot's cleaned rows
        ]
        write = [
          "cleaned/run=*/changes/bucket=*/part-*.parquet", # route: a part's valid rows, per bucket
          "cleaned/run=*/base/bucket=*.parquet",           # re-bucketing the base
          "rejects/run=*/part-*.csv",                      # route: a part's rejects
          "state/runs/run=*/route-*.json",                 # route: the part's record (last)
          "state/runs/run=*/tasks/bucket=*.json",          # plan: one task per changed bucket
          "state/runs/run=*/plan-items.json",              # plan: the bucket Map's ItemReader input
          "state/runs/run=*/plan.json",                    # plan (last)
        ]
        delete = [ # remove_stale_files: files of an earlier attempt of the run this one does not write
          "cleaned/run=*/*.parquet",
          "curated/run=*/*.parquet",
          "curated/run=*/*.products.json",
          "rejects/run=*/*.csv",
        ]
      }
    }
    score = {
      secrets = []
      bucket  = []
      lake = {
        read = [
          "state/runs/run=*/tasks/bucket=*.json", # its bucket's task
          "state/runs/run=*/base.json",           # run_base: the run's start time
          "state/erased_buyers.json",             # erased buyers leave the carried rows (none yet: nobody erased)
          "cleaned/run=*/*.parquet",              # the bucket's base rows and the run's change files
          "curated/run=*/bucket=*.parquet",       # the base's topics, reused for unchanged texts
        ]
        write = [
          "cleaned/run=*/_tombstones/bucket=*.json", # what the run removed from the bucket
          "cleaned/run=*/bucket=*.parquet",
          "curated/run=*/bucket=*.parquet",
          "curated/run=*/bucket=*.products.json", # the bucket's product directory
          "state/runs/run=*/bucket-*.json",       # the bucket record publish reads (last)
        ]
        delete = [ # a bucket left without rows
          "cleaned/run=*/bucket=*.parquet",
          "curated/run=*/bucket=*.parquet",
          "curated/run=*/bucket=*.products.json",
        ]
      }
    }
    publish = {
      secrets = []
      bucket  = []
      lake = {
        read = [
          "state/runs/run=*/plan.json",
          "state/lease.json",                     # the run must still hold the lease
          "state/runs/run=*/base.json",           # run_base: the commit the run was built on
          "curated/run=*/_manifest.json",         # a base recorded without its snapshot
          "state/runs/run=*/bucket-*.json",       # the merges' records
          "curated/run=*/bucket=*.parquet",       # checked against the records: checksum, rows, order
          "curated/run=*/bucket=*.products.json", # same
          "state/erased_buyers.json",             # an erasure after transform refuses the publish (none yet: nobody erased)
          "curated/_latest.json",                 # the commit point, compare-and-swap (none yet: the first publish)
        ]
        write = [
          "curated/_latest.json",         # the commit
          "curated/run=*/_manifest.json", # the run's manifest, for rollback
          "curated/_athena/symlink.txt",  # the Athena listing of the live snapshot (athena.rs)
          "state/lease.json",             # released after the commit, or on the failure path
        ]
      }
    }
    # The right to erasure (functions/erase, infra/erasure.tf; not a stage of the state machine):
    # the erased list (compare-and-swap), the run lease, its journal, and every object of every
    # data prefix of the lake (module.lake.data_prefixes) read, rewritten without the buyer,
    # or deleted, with the manifests and run records that name a rewritten file.
    # The MongoDB secret: the archive writer's URI (REVIEWS_MONGO_SECRET_ID), to delete the
    # buyer's documents. On the versioned lake, the earlier versions of every object it rewrote
    # or deleted are deleted too (ListObjectVersions, then DeleteObject of each version id).
    erase = {
      secrets = ["mongodb"]
      bucket  = ["s3:ListBucketVersions"]
      lake = {
        read   = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        write  = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        delete = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        purge  = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
      }
    }
  }
}

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

# One execution role per function, with only what local.function_grants lists for it, plus what
# every function in the VPC needs: its own log group, X-Ray, the decryption of its own
# environment, and the network interfaces Lambda creates in the VPC for it. (PostgreSQL
# read-only and MongoDB write are database roles, etl_reader and the archive writer, whose URIs
# are the secrets' values.)
resource "aws_iam_role" "function" {
  for_each           = local.function_grants
  name               = "${local.prefix}-${var.environment}-${each.key}"
  description        = "Execution role of ${local.function_names[each.key]} only (infra/main.tf local.function_grants)"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.function_grants

  # The whole lake bucket, on purpose WITHOUT an s3:prefix condition. The lake code takes a
  # missing key as "none yet" (the first lease, a run's first base.json, nobody erased, nothing
  # published), so it needs S3 to answer 404 to GetObject/HeadObject of a missing key; S3 does so
  # only when the caller has s3:ListBucket on the bucket, and a GetObject request carries no
  # s3:prefix for a prefix condition to match (it would most likely get 403 AccessDenied).
  # Listing exposes the lake's key names (run ids, part and bucket numbers), not their content:
  # what the function may read, write or delete stays the object grants below.
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
  }

  # Actions on the lake bucket itself beyond listing (erase: s3:ListBucketVersions).
  dynamic "statement" {
    for_each = each.value.bucket
    content {
      sid       = "Lake${replace(statement.value, "s3:", "")}"
      actions   = [statement.value]
      resources = [module.lake.bucket_arn]
    }
  }

  # One statement per kind of object access the function has (read, write, delete, purge).
  dynamic "statement" {
    for_each = each.value.lake
    content {
      sid       = "Lake${title(statement.key)}"
      actions   = local.lake_actions[statement.key]
      resources = [for k in statement.value : "${module.lake.bucket_arn}/${k}"]
    }
  }

  dynamic "statement" {
    for_each = each.value.secrets
    content {
      sid       = "Read${title(statement.value)}Secret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.database_secret_arns[statement.value]]
    }
  }

  # The secret is encrypted with the stack key: decrypt it only through Secrets Manager, and
  # only that secret's data keys.
  dynamic "statement" {
    for_each = each.value.secrets
    content {
      sid       = "Decrypt${title(statement.value)}Secret"
      actions   = ["kms:Decrypt"]
      resources = [module.kms.key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:SecretARN"
        values   = [local.database_secret_arns[statement.value]]
      }
    }
  }

  # Its environment variables are encrypted with the stack key: only through Lambda, only its own.
  statement {
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:lambda:FunctionArn"
      values   = [local.function_arns[each.key], "${local.function_arns[each.key]}:*"]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arns[each.key]}:*"]
  }

  # Instead of AWSXRayDaemonWriteAccess: only the two write actions the Lambda service uses for
  # active tracing (the functions run no X-Ray SDK, so no sampling-rule reads).
  statement {
    #checkov:skip=CKV_AWS_356:X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # these actions support no resource-level scoping
  }

  # Instead of AWSLambdaVPCAccessExecutionRole (which also grants logs:CreateLogGroup and
  # logs:PutLogEvents on every log group): the network interfaces Lambda creates, with this
  # role, for the function in the pipeline's subnets and security groups.
  statement {
    sid     = "CreateVpcNetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"],
      [for id in var.vpc_subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
      [for id in var.vpc_security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"],
    )
  }

  statement {
    sid       = "ManageVpcNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]
  }

  statement {
    #checkov:skip=CKV_AWS_356:EC2 Describe actions support no resource-level permissions.
    sid       = "DescribeVpcNetworkInterfaces"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"] # Describe* actions support no resource-level scoping
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_grants
  name     = "least-privilege"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

# Each database secret: only the roles of the functions that read it (local.function_grants)
# may read its value, whatever an identity policy elsewhere in the account grants. Secrets
# Manager speaks TLS only; the second statement states it. No rotation function exists
# (the databases are external; see the checkov skip on the secrets).
data "aws_iam_policy_document" "database_secret" {
  #checkov:skip=CKV_AWS_356:In a secret's resource policy, Resource "*" means this secret.
  #checkov:skip=CKV_AWS_111:Same: these are Deny statements of a resource policy on one secret.
  for_each = local.database_secret_arns

  statement {
    sid       = "OnlyItsFunctionsReadTheValue"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["*"] # in a resource policy, "*" is this secret
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [for f, g in local.function_grants : aws_iam_role.function[f].arn if contains(g.secrets, each.key)]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["secretsmanager:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "database" {
  for_each            = local.database_secret_arns
  secret_arn          = each.value
  policy              = data.aws_iam_policy_document.database_secret[each.key].json
  block_public_policy = true
}

# API (read-only): s3:GetObject on curated/ ONLY and s3:ListBucket of the lake bucket
# (scripts/infra-check.sh checks that nothing else of the lake, no secret and no other service is
# granted), plus its own logs, traces and the decryption of its environment. Not in the VPC: no
# network interfaces.
resource "aws_iam_role" "api" {
  name               = "${local.prefix}-${var.environment}-api-readonly"
  description        = "reviews-api Lambda: read-only on curated/"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "api" {
  # The API never lists; this grant makes S3 answer 404, not 403, to the GetObject of
  # curated/_latest.json before the first publish, which the API serves as "no dataset has been
  # published yet" (crates/api/src/holder.rs: LakeError::NotFound -> LoadError::NoManifest)
  # rather than "could not be read" with an AccessDenied warning at every check. Without an
  # s3:prefix condition for the reason given for the function roles; it exposes the lake's key
  # names (run ids, part and bucket numbers), not their content: objects stay curated/ only.
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
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
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:lambda:FunctionArn"
      values   = [local.function_arns["api"], "${local.function_arns["api"]}:*"]
    }
  }

  statement {
    #checkov:skip=CKV_AWS_356:X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # these actions support no resource-level scoping
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "curated-read-only"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

# Administrator: operates the state machine's executions (start, stop, redrive, inspect, map
# runs), starts an erasure (lambda:InvokeFunction of the erase function only), reads and queries
# the project's logs, reads its alarms, metrics and dashboard; reads raw/ and rejects/ (to
# investigate rejected rows, docs/ARCHITECTURE.md section 5.3). No write or delete on the logs
# or the state machine (no definition update, no retention change, no deletion), no cleaned/ or
# curated/, no secret value, no database, no key.
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
  description          = "Operates the pipeline: executions, erasures, logs (read), alarms; reads raw/ and rejects/"
  assume_role_policy   = data.aws_iam_policy_document.assume_admin.json
  max_session_duration = 3600
}

locals {
  sfn_arn_prefix = "arn:${local.partition}:states:${local.region}:${local.account_id}"
  # Executions of the state machine and the child executions of its map runs
  # (<state machine>/<map run label>:<id>).
  sfn_execution_arns = [
    "${local.sfn_arn_prefix}:execution:${local.prefix}-pipeline:*",
    "${local.sfn_arn_prefix}:execution:${local.prefix}-pipeline/*",
  ]
  sfn_map_run_arn = "${local.sfn_arn_prefix}:mapRun:${local.prefix}-pipeline/*"
}

data "aws_iam_policy_document" "admin" {
  statement {
    sid       = "StartAndListExecutions"
    actions   = ["states:StartExecution", "states:ListExecutions", "states:DescribeStateMachine"]
    resources = [module.state_machine.arn]
  }

  statement {
    sid = "OperateExecutions"
    actions = [
      "states:DescribeExecution", "states:GetExecutionHistory", "states:DescribeStateMachineForExecution",
      "states:StopExecution", "states:RedriveExecution", "states:ListMapRuns",
    ]
    resources = local.sfn_execution_arns
  }

  statement {
    sid       = "InspectMapRuns"
    actions   = ["states:DescribeMapRun", "states:ListExecutions"]
    resources = [local.sfn_map_run_arn]
  }

  statement {
    #checkov:skip=CKV_AWS_356:ListStateMachines supports no resource-level permissions.
    sid       = "ListStateMachines"
    actions   = ["states:ListStateMachines"]
    resources = ["*"] # supports no resource-level scoping
  }

  statement {
    sid = "ReadProjectLogs"
    actions = [
      "logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams",
      "logs:StartQuery", "logs:GetLogGroupFields",
    ]
    resources = concat(
      [for arn in values(local.log_group_arns) : "${arn}:*"],
      ["${module.state_machine.log_group_arn}:*", "${module.api.access_log_group_arn}:*"],
    )
  }

  statement {
    #checkov:skip=CKV_AWS_356:These read-only actions support no resource-level permissions.
    sid = "QueryLogsAndMetrics"
    actions = [
      "logs:DescribeLogGroups", "logs:DescribeQueries", "logs:GetQueryResults", "logs:StopQuery",
      "cloudwatch:GetMetricData", "cloudwatch:ListMetrics", "cloudwatch:ListDashboards",
    ]
    resources = ["*"] # these actions support no resource-level scoping
  }

  statement {
    sid       = "ReadProjectAlarms"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.prefix}-*"]
  }

  statement {
    sid       = "ReadDashboard"
    actions   = ["cloudwatch:GetDashboard"]
    resources = ["arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${aws_cloudwatch_dashboard.pipeline.dashboard_name}"]
  }

  # The right to erasure (infra/erasure.tf): invoking the erase function, no other function and
  # no other Lambda action. Its log group is one of local.log_group_arns (ReadProjectLogs).
  statement {
    sid       = "StartErasure"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.function_arns["erase"]]
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

# The CA certificates extract verifies PostgreSQL's server certificate against (TLS verify-full)
# when the secret's URI names no sslrootcert (an RDS-managed secret, JSON without a CA, never
# does): var.postgres_ca_bundle alone in a small layer, mounted at /opt/postgres-ca/ca-bundle.pem
# (REVIEWS_PG_SSLROOTCERT in local.stage_env). Public certificates only: that the file's content
# is in the plan and the state reveals nothing.
data "archive_file" "postgres_ca" {
  type        = "zip"
  output_path = "${var.lambda_artifacts_dir}/postgres-ca-layer.zip"

  source {
    content  = file(var.postgres_ca_bundle)
    filename = "postgres-ca/ca-bundle.pem"
  }
}

resource "aws_lambda_layer_version" "postgres_ca" {
  layer_name          = "${local.prefix}-postgres-ca"
  description         = "PostgreSQL CA bundle for ${local.prefix}-extract: /opt/postgres-ca/ca-bundle.pem"
  filename            = data.archive_file.postgres_ca.output_path
  source_code_hash    = data.archive_file.postgres_ca.output_base64sha256
  compatible_runtimes = ["provided.al2023"]
}

locals {
  # The layers of each stage: only score gets ONNX Runtime and the model, only extract the
  # PostgreSQL CA bundle (scripts/infra-check.sh checks both).
  stage_layers = {
    extract   = [aws_lambda_layer_version.postgres_ca.arn]
    archive   = []
    transform = []
    score     = [aws_lambda_layer_version.score_runtime.arn]
    publish   = []
  }
}

module "stage" {
  source   = "./modules/lambda_function"
  for_each = local.pipeline_stages

  name                   = local.function_names[each.key]
  description            = each.value
  zip_path               = local.zip_paths[each.key]
  role_arn               = aws_iam_role.function[each.key].arn
  architecture           = var.lambda_architecture
  memory_mb              = var.functions[each.key].memory_mb
  timeout_s              = var.functions[each.key].timeout_s
  reserved_concurrency   = var.functions[each.key].reserved_concurrency
  environment            = local.stage_env[each.key]
  layer_arns             = local.stage_layers[each.key]
  vpc_subnet_ids         = var.vpc_subnet_ids
  vpc_security_group_ids = var.vpc_security_group_ids
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
  log_level              = var.log_level

  depends_on = [aws_iam_role_policy.function]
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
