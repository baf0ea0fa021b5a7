variable "name" {
  description = "Function name = binary name (e.g. reviews-extract)."
  type        = string
}

variable "description" {
  description = "Function description."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Path of bootstrap.zip."
  type        = string
}

variable "role_arn" {
  description = "Execution role."
  type        = string
}

variable "architecture" {
  description = "x86_64 or arm64."
  type        = string
}

variable "memory_mb" {
  description = "Memory (MB); CPU scales with it."
  type        = number
}

variable "timeout_s" {
  description = "Timeout (seconds)."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (-1: unreserved)."
  type        = number
}

variable "environment" {
  description = "Environment variables (names of secrets, never their values)."
  type        = map(string)
}

variable "layer_arns" {
  description = "Layer version ARNs."
  type        = list(string)
  default     = []
}

variable "vpc_subnet_ids" {
  description = "Subnets (null: not attached to a VPC)."
  type        = list(string)
  default     = null
}

variable "vpc_security_group_ids" {
  description = "Security groups (with vpc_subnet_ids)."
  type        = list(string)
  default     = null
}

variable "kms_key_arn" {
  description = "CMK for the environment variables and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Log retention."
  type        = number
}

variable "log_level" {
  description = "Application log level (Lambda advanced logging controls): TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  type        = string
  default     = "INFO"
}
