variable "bucket_name" {
  description = "Name of the lake bucket (globally unique)."
  type        = string
}

variable "account_id" {
  description = "AWS account id (for the log-delivery policy condition)."
  type        = string
}

variable "raw_expiration_days" {
  description = "Days after which raw/ objects expire."
  type        = number
}

variable "rejects_expiration_days" {
  description = "Days after which rejects/ objects expire."
  type        = number
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version is kept."
  type        = number
}
