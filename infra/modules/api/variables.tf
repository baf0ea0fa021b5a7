variable "name" {
  description = "API name."
  type        = string
}

variable "function_name" {
  description = "Name of the reviews-api function."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the reviews-api function."
  type        = string
}

variable "cors_origins" {
  description = "Origins allowed to call the API from a browser (the storefront)."
  type        = list(string)
}

variable "throttle_rate" {
  description = "Steady-state requests per second."
  type        = number
}

variable "throttle_burst" {
  description = "Burst."
  type        = number
}

variable "kms_key_arn" {
  description = "CMK of the access log group."
  type        = string
}

variable "log_retention_days" {
  description = "Access log retention."
  type        = number
}
