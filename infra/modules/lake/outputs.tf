output "bucket_name" {
  description = "Lake bucket name."
  value       = aws_s3_bucket.lake.id
}

output "bucket_arn" {
  description = "Lake bucket ARN."
  value       = aws_s3_bucket.lake.arn
}

output "logs_bucket_name" {
  description = "Access-log bucket name."
  value       = aws_s3_bucket.logs.id
}

output "data_prefixes" {
  description = "Top-level prefixes of the lake layout."
  value       = local.data_prefixes
}

output "artifacts_bucket_name" {
  description = "Deployment artifacts bucket (the score layer archive)."
  value       = aws_s3_bucket.artifacts.id
}
