variable "name" {
  description = "Name prefix."
  type        = string
}

variable "bucket_name" {
  description = "Storefront bucket name (globally unique)."
  type        = string
}

variable "logs_bucket_name" {
  description = "Bucket receiving S3 server access logs."
  type        = string
}

variable "frontend_dir" {
  description = "Directory of the static files."
  type        = string
}

variable "api_endpoint" {
  description = "Base URL of the reviews API, written to /config.js."
  type        = string
}

variable "acm_certificate_arn" {
  description = "Optional ACM certificate (us-east-1)."
  type        = string
}

variable "aliases" {
  description = "Custom domain names."
  type        = list(string)
}

variable "web_acl_arn" {
  description = "Optional WAFv2 web ACL ARN."
  type        = string
}
