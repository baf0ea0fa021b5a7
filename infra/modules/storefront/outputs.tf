output "url" {
  description = "HTTPS URL of the storefront."
  value       = "https://${aws_cloudfront_distribution.site.domain_name}"
}

output "distribution_id" {
  description = "CloudFront distribution id (for invalidations)."
  value       = aws_cloudfront_distribution.site.id
}

output "bucket_name" {
  description = "Storefront bucket."
  value       = aws_s3_bucket.site.id
}
