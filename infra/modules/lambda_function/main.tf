# One Rust Lambda: runtime provided.al2023, handler "bootstrap", the zip written by
# `cargo lambda build --release --output-format zip` (target/lambda/<name>/bootstrap.zip).

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously only (Step Functions task or API Gateway): failures surface to the caller's Retry/Catch; a DLQ only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the project does not run; artifacts are built by CI from the reviewed repository.
  function_name = var.name
  description   = var.description
  role          = var.role_arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)

  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency
  layers                         = var.layer_arns
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  dynamic "vpc_config" {
    for_each = var.vpc_subnet_ids == null ? [] : [1]
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  tracing_config {
    mode = "Active"
  }

  # The functions read the level and format Lambda sets from these (AWS_LAMBDA_LOG_LEVEL,
  # AWS_LAMBDA_LOG_FORMAT) unless RUST_LOG is set.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_cloudwatch_log_group.this]
}
