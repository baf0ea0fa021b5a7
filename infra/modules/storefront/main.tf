# The storefront page (frontend/): a PRIVATE bucket served only through CloudFront with Origin
# Access Control. Chosen over an S3 website endpoint because a website endpoint serves plain HTTP
# only and needs a publicly readable bucket (no public access block); with OAC the bucket stays
# private (all four public-access blocks on, TLS-only policy), visitors get HTTPS with security
# headers, and only this distribution (SourceArn condition) can read the objects.

data "aws_region" "current" {}

locals {
  content_types = {
    html = "text/html; charset=utf-8"
    js   = "text/javascript; charset=utf-8"
    mjs  = "text/javascript; charset=utf-8"
    css  = "text/css; charset=utf-8"
    json = "application/json"
    svg  = "image/svg+xml"
    png  = "image/png"
    jpg  = "image/jpeg"
    ico  = "image/x-icon"
    txt  = "text/plain; charset=utf-8"
    map  = "application/json"
  }
  files = fileset(var.frontend_dir, "**")
}

resource "aws_s3_bucket" "site" {
  #checkov:skip=CKV_AWS_144:Static files are rebuilt from the repository; no cross-region replica needed.
  #checkov:skip=CKV_AWS_145:Served through CloudFront OAC; SSE-S3 avoids a KMS key grant to CloudFront for public page assets.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to storefront object events.
  bucket        = var.bucket_name
  force_destroy = true
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "site" {
  bucket        = aws_s3_bucket.site.id
  target_bucket = var.logs_bucket_name
  target_prefix = "s3/${var.bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket     = aws_s3_bucket.site.id
  depends_on = [aws_s3_bucket_versioning.site]

  rule {
    id     = "previous-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_object" "file" {
  for_each     = local.files
  bucket       = aws_s3_bucket.site.id
  key          = each.value
  source       = "${var.frontend_dir}/${each.value}"
  source_hash  = filemd5("${var.frontend_dir}/${each.value}")
  content_type = lookup(local.content_types, lower(reverse(split(".", each.value))[0]), "application/octet-stream")
}

# The page reads the API base URL from /config.js (window.REVIEWS_API_BASE).
resource "aws_s3_object" "config" {
  bucket        = aws_s3_bucket.site.id
  key           = "config.js"
  content       = "window.REVIEWS_API_BASE = ${jsonencode(var.api_endpoint)};\n"
  content_type  = "text/javascript; charset=utf-8"
  cache_control = "no-cache"
}

resource "aws_cloudfront_origin_access_control" "site" {
  name                              = var.bucket_name
  description                       = "Storefront bucket, signed requests only"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# CSP: the API's exact URL is not used here (the API's CORS origin depends on this distribution,
# which would be a dependency cycle); any HTTP API of this region is allowed as a fetch target.
resource "aws_cloudfront_response_headers_policy" "security" {
  name = "${var.name}-security-headers"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    content_security_policy {
      content_security_policy = "default-src 'self'; connect-src 'self' https://*.execute-api.${data.aws_region.current.name}.amazonaws.com; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
      override                = true
    }
  }
}

resource "aws_cloudfront_distribution" "site" {
  #checkov:skip=CKV_AWS_86:Standard (legacy) logging needs ACL-enabled buckets, which this stack disables everywhere; request metrics are in CloudWatch.
  #checkov:skip=CKV_AWS_310:One origin (the bucket); an origin group would need a replica bucket for static files that are rebuilt from the repository.
  #checkov:skip=CKV_AWS_374:The storefront is not geo-restricted by requirement.
  #checkov:skip=CKV_AWS_68:A WAF web ACL is optional (var.storefront_web_acl_arn): static public pages, no forms, no origin compute.
  #checkov:skip=CKV2_AWS_47:Same as CKV_AWS_68: no WAF by default; there is no Java/Log4j in the path (S3 origin).
  #checkov:skip=CKV_AWS_174:With the default *.cloudfront.net certificate CloudFront fixes the minimum protocol; with var.storefront_acm_certificate_arn the policy is TLSv1.2_2021.
  #checkov:skip=CKV2_AWS_42:A custom certificate is optional (var.storefront_acm_certificate_arn); the default certificate serves HTTPS.
  enabled             = true
  is_ipv6_enabled     = true
  comment             = "${var.name} storefront"
  default_root_object = "index.html"
  price_class         = "PriceClass_100"
  aliases             = var.aliases
  web_acl_id          = var.web_acl_arn == "" ? null : var.web_acl_arn

  origin {
    domain_name              = aws_s3_bucket.site.bucket_regional_domain_name
    origin_id                = "storefront-s3"
    origin_access_control_id = aws_cloudfront_origin_access_control.site.id
  }

  default_cache_behavior {
    target_origin_id           = "storefront-s3"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = "658327ea-f89d-4fab-a63d-7e88639e58f6" # AWS managed CachingOptimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == ""
    acm_certificate_arn            = var.acm_certificate_arn == "" ? null : var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == "" ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == "" ? "TLSv1" : "TLSv1.2_2021"
  }
}

data "aws_iam_policy_document" "site" {
  statement {
    sid       = "CloudFrontOacReadOnly"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.site.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.site.arn, "${aws_s3_bucket.site.arn}/*"]
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
}

resource "aws_s3_bucket_policy" "site" {
  bucket     = aws_s3_bucket.site.id
  policy     = data.aws_iam_policy_document.site.json
  depends_on = [aws_s3_bucket_public_access_block.site]
}
