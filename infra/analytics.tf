# Analysts' access to the curated data: a Glue table that Athena queries, an Athena workgroup
# whose results are encrypted in their own bucket, and the analyst role.
#
# The table does not point at a run's prefix: a live snapshot's files are spread over several
# curated/run=<id>/ prefixes (an unchanged product bucket keeps the file of the run that last
# wrote it). Publish and rollback rewrite curated/_athena/symlink.txt after every commit, one
# s3:// location a line (crates/stages/src/athena.rs); the table reads that listing with Hive's
# SymlinkTextInputFormat, so a query sees exactly the snapshot the API serves.

locals {
  glue_database        = replace("${local.prefix}_${var.environment}", "-", "_")
  glue_table           = "curated_reviews"
  athena_workgroup     = "${local.prefix}-${var.environment}-analytics"
  athena_results       = "${local.prefix}-${var.environment}-athena-results-${local.account_id}"
  athena_workgroup_arn = "arn:${local.partition}:athena:${local.region}:${local.account_id}:workgroup/${local.athena_workgroup}"
  glue_arn_prefix      = "arn:${local.partition}:glue:${local.region}:${local.account_id}"

  # curated/3 (crates/domain/src/schema.rs), in file order: the files' integers are signed
  # (rating INT16, counts INT32), the types Athena, Spark and Redshift Spectrum read as they are.
  curated_columns = [
    { name = "product_id", type = "string", comment = "" },
    { name = "relevance", type = "float", comment = "in [0, 1]; the API ranks by it" },
    { name = "review_id", type = "string", comment = "" },
    { name = "product_title", type = "string", comment = "" },
    { name = "product_category", type = "string", comment = "" },
    { name = "rating", type = "smallint", comment = "1-5" },
    { name = "title", type = "string", comment = "" },
    { name = "text", type = "string", comment = "" },
    { name = "helpful_votes", type = "int", comment = "" },
    { name = "total_votes", type = "int", comment = "" },
    { name = "verified_purchase", type = "boolean", comment = "null: unknown" },
    { name = "review_date", type = "date", comment = "" },
    { name = "language", type = "string", comment = "" },
    { name = "word_count", type = "int", comment = "" },
    { name = "topics", type = "array<struct<id:string,score:float>>", comment = "topic ids with scores" },
    { name = "reasons", type = "array<string>", comment = "why it ranks where it does; null in older files" },
    { name = "sig_informativeness", type = "float", comment = "relevance signal" },
    { name = "sig_length", type = "float", comment = "relevance signal" },
    { name = "sig_helpful", type = "float", comment = "relevance signal" },
    { name = "sig_verified", type = "float", comment = "relevance signal" },
    { name = "sig_deviation", type = "float", comment = "relevance signal" },
    { name = "sig_recency", type = "float", comment = "relevance signal" },
    { name = "sig_learned", type = "float", comment = "learned ranking signal; null without a ranker" },
    { name = "run_id", type = "string", comment = "the run that wrote the file" },
    { name = "scored_at", type = "timestamp", comment = "UTC" },
  ]
}

# ----------------------------------------------------------------------------------------------
# Glue Data Catalog: the database and the table over the live snapshot
# ----------------------------------------------------------------------------------------------
resource "aws_glue_catalog_database" "reviews" {
  name        = local.glue_database
  description = "Reviews pipeline: the live curated snapshot (what the API serves)"
}

resource "aws_glue_catalog_table" "curated_reviews" {
  name          = local.glue_table
  database_name = aws_glue_catalog_database.reviews.name
  description   = "The live curated snapshot, through curated/_athena/symlink.txt (rewritten by every publish and rollback)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL         = "TRUE"
    "classification" = "parquet"
  }

  storage_descriptor {
    location      = "s3://${module.lake.bucket_name}/curated/_athena/"
    input_format  = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.curated_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment == "" ? null : columns.value.comment
      }
    }
  }
}

# ----------------------------------------------------------------------------------------------
# Athena: a workgroup whose settings clients cannot override, results SSE-KMS in their own bucket
# ----------------------------------------------------------------------------------------------
resource "aws_s3_bucket" "athena_results" {
  #checkov:skip=CKV_AWS_144:Query results are disposable (re-run the query); they expire after athena_results_expiration_days.
  #checkov:skip=CKV2_AWS_62:No consumer reacts to new query results; event notifications would have no target.
  bucket        = local.athena_results
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "athena_results" {
  bucket                  = aws_s3_bucket.athena_results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.kms.key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "athena_results" {
  bucket        = aws_s3_bucket.athena_results.id
  target_bucket = module.lake.logs_bucket_name
  target_prefix = "s3/${local.athena_results}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  bucket     = aws_s3_bucket.athena_results.id
  depends_on = [aws_s3_bucket_versioning.athena_results]

  rule {
    id     = "expire-query-results"
    status = "Enabled"
    filter {}
    expiration {
      days = var.athena_results_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "athena_results" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.athena_results.arn, "${aws_s3_bucket.athena_results.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyUploadsNotSseKms"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.athena_results.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }
}

resource "aws_s3_bucket_policy" "athena_results" {
  bucket     = aws_s3_bucket.athena_results.id
  policy     = data.aws_iam_policy_document.athena_results.json
  depends_on = [aws_s3_bucket_public_access_block.athena_results]
}

resource "aws_athena_workgroup" "analytics" {
  name        = local.athena_workgroup
  description = "Queries over ${local.glue_database}.${local.glue_table}; results SSE-KMS in ${local.athena_results}"
  state       = "ENABLED"

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.id}/results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = module.kms.key_arn
      }
    }
  }
}

# ----------------------------------------------------------------------------------------------
# Analyst: read curated/ (through the table), query in the workgroup, read its own results
# ----------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_analyst" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.analyst_principal_arns) > 0 ? var.analyst_principal_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    condition {
      test     = "Bool"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role" "analyst" {
  name                 = "${local.prefix}-${var.environment}-analyst"
  description          = "Queries the live curated snapshot with Athena: curated/ read, the Glue table, the analytics workgroup"
  assume_role_policy   = data.aws_iam_policy_document.assume_analyst.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "analyst" {
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
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [module.lake.bucket_arn, aws_s3_bucket.athena_results.arn]
  }

  statement {
    sid       = "ListQueryResults"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.athena_results.arn]
  }

  statement {
    sid = "ReadWriteQueryResults"
    actions = [
      "s3:GetObject", "s3:PutObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.athena_results.arn}/*"]
  }

  statement {
    sid       = "EncryptQueryResults"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [aws_s3_bucket.athena_results.arn, "${aws_s3_bucket.athena_results.arn}/*"]
    }
  }

  statement {
    sid = "QueryInTheWorkgroup"
    actions = [
      "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
      "athena:GetQueryResults", "athena:GetQueryResultsStream", "athena:GetQueryRuntimeStatistics",
      "athena:ListQueryExecutions", "athena:BatchGetQueryExecution", "athena:GetWorkGroup",
    ]
    resources = [local.athena_workgroup_arn]
  }

  statement {
    sid = "BrowseTheCatalog"
    actions = [
      "athena:GetDataCatalog", "athena:ListDatabases", "athena:GetDatabase",
      "athena:ListTableMetadata", "athena:GetTableMetadata",
    ]
    resources = ["arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog"]
  }

  statement {
    sid       = "ListWorkgroupsAndCatalogs"
    actions   = ["athena:ListWorkGroups", "athena:ListDataCatalogs"]
    resources = ["*"] # these actions support no resource-level scoping
  }

  statement {
    sid = "ReadTheTable"
    actions = [
      "glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
      "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition",
    ]
    resources = [
      "${local.glue_arn_prefix}:catalog",
      "${local.glue_arn_prefix}:database/${local.glue_database}",
      "${local.glue_arn_prefix}:table/${local.glue_database}/*",
    ]
  }
}

resource "aws_iam_role_policy" "analyst" {
  name   = "query-curated"
  role   = aws_iam_role.analyst.id
  policy = data.aws_iam_policy_document.analyst.json
}
