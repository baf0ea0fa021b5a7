# ----------------------------------------------------------------------------------------------
# The right to erasure in production: the reviews-erase Lambda (functions/erase), the same
# workflow as `reviews erase`: the buyer goes on state/erased_buyers.json (conditional write),
# their MongoDB archive documents are deleted, and every object of the lake (raw/, rejects/,
# cleaned/, curated/ of every run kept for rollback, state/) is scrubbed of them, with the
# manifests and run records that name a rewritten file updated. The administrator starts it:
#   aws lambda invoke --function-name <project>-erase --payload '{"buyer_id":"..."}' out.json
#
# Kept in this file (its own role, its own policy on the administrator role) so that the IAM
# of main.tf can change without touching it.
# ----------------------------------------------------------------------------------------------

locals {
  erase_function_name = "${local.prefix}-erase"
  erase_log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.erase_function_name}"
}

# Its own role: the lake's data prefixes (read, rewrite, delete; listing the whole bucket, since
# the scrub reads every object), the archive writer's secret, the stack key, its own logs.
resource "aws_iam_role" "eraser" {
  name               = "${local.prefix}-${var.environment}-eraser"
  description        = "Erase Lambda: lake read/write/delete (data prefixes), the MongoDB archive secret, its logs"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "eraser" {
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
  }

  statement {
    sid = "ScrubLakeObjects"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = [for p in module.lake.data_prefixes : "${module.lake.bucket_arn}/${p}*"]
  }

  statement {
    sid       = "ReadArchiveSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.mongodb.arn]
  }

  statement {
    sid       = "DecryptSecretAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.erase_log_group_arn}:*"]
  }
}

resource "aws_iam_role_policy" "eraser" {
  name   = "lake-scrub-and-archive-secret"
  role   = aws_iam_role.eraser.id
  policy = data.aws_iam_policy_document.eraser.json
}

# In the VPC like the archive stage: it reaches MongoDB.
resource "aws_iam_role_policy_attachment" "eraser_vpc" {
  role       = aws_iam_role.eraser.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy_attachment" "eraser_xray" {
  role       = aws_iam_role.eraser.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

module "erase_function" {
  source = "./modules/lambda_function"

  name         = local.erase_function_name
  description  = "Right to erasure: {buyer_id} -> erased list, MongoDB archive, every lake object scrubbed"
  zip_path     = "${var.lambda_artifacts_dir}/reviews-erase/bootstrap.zip"
  role_arn     = aws_iam_role.eraser.arn
  architecture = var.lambda_architecture
  # Reads and rewrites one object at a time; 15 minutes is the Lambda limit. The erasure takes
  # the run lease for 30 minutes, so a timed-out invocation keeps the schedule out no longer.
  memory_mb = 2048
  timeout_s = 900
  # One erasure at a time (a second one waits for the lease anyway).
  reserved_concurrency = 1
  environment = merge(local.common_env, {
    REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name
  })
  vpc_subnet_ids         = var.vpc_subnet_ids
  vpc_security_group_ids = var.vpc_security_group_ids
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
  log_level              = var.log_level

  depends_on = [aws_iam_role_policy.eraser, aws_iam_role_policy_attachment.eraser_vpc]
}

# The administrator may start an erasure (and read its log), nothing more of Lambda.
data "aws_iam_policy_document" "admin_erasure" {
  statement {
    sid       = "StartErasure"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.erase_function.arn]
  }

  statement {
    sid       = "ReadErasureLogs"
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults"]
    resources = ["${module.erase_function.log_group_arn}:*"]
  }
}

resource "aws_iam_role_policy" "admin_erasure" {
  name   = "start-erasure"
  role   = aws_iam_role.admin.id
  policy = data.aws_iam_policy_document.admin_erasure.json
}

resource "aws_cloudwatch_metric_alarm" "erase_errors" {
  alarm_name          = "${local.erase_function_name}-errors"
  alarm_description   = "An erasure failed: the buyer is on the erased list (no run admits them) but the archive or the lake may still hold them. Read the function's log and invoke it again."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.erase_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  depends_on = [module.erase_function]
}
