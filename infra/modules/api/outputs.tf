output "endpoint" {
  description = "Base URL of the API."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_id" {
  description = "HTTP API id."
  value       = aws_apigatewayv2_api.this.id
}

output "access_log_group_arn" {
  description = "Access log group ARN."
  value       = aws_cloudwatch_log_group.access.arn
}
