# No secret values here: the secrets' NAMES only (their values are never in Terraform).

output "lake_bucket" {
  description = "Lake bucket (REVIEWS_LAKE_URI = s3://<this>)."
  value       = module.lake.bucket_name
}

output "state_machine_arn" {
  description = "Step Functions state machine."
  value       = module.state_machine.arn
}

output "function_names" {
  description = "Lambda function names by stage."
  value       = local.function_names
}

output "api_endpoint" {
  description = "Base URL of the reviews API (GET /reviews/{product_id}/top)."
  value       = module.api.endpoint
}

output "storefront_url" {
  description = "HTTPS URL of the storefront."
  value       = module.storefront.url
}

output "secret_names" {
  description = "Secrets to fill out of band with put-secret-value."
  value = {
    postgres = aws_secretsmanager_secret.postgres.name
    mongodb  = aws_secretsmanager_secret.mongodb.name
  }
}

output "role_arns" {
  description = "IAM roles of docs/ARCHITECTURE.md section 5."
  value = {
    functions     = { for f, r in aws_iam_role.function : f => r.arn }
    api_readonly  = aws_iam_role.api.arn
    administrator = aws_iam_role.admin.arn
    analyst       = aws_iam_role.analyst.arn
    state_machine = module.state_machine.role_arn
  }
}

output "alarm_topic_arn" {
  description = "SNS topic of the pipeline alarms."
  value       = aws_sns_topic.alarms.arn
}

output "athena" {
  description = "Where to query the live curated snapshot: Athena workgroup, Glue database and table, results bucket."
  value = {
    workgroup      = aws_athena_workgroup.analytics.name
    database       = aws_glue_catalog_database.reviews.name
    table          = aws_glue_catalog_table.curated_reviews.name
    results_bucket = aws_s3_bucket.athena_results.id
  }
}
