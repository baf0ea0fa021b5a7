variable "name" {
  description = "State machine name."
  type        = string
}

variable "asl_path" {
  description = "Path of statemachine.asl.json."
  type        = string
}

variable "function_arns" {
  description = "ARNs of the stage functions, keyed extract, archive, transform, score, publish."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["extract", "archive", "transform", "score", "publish"] : contains(keys(var.function_arns), k)])
    error_message = "function_arns needs extract, archive, transform, score and publish."
  }
}

variable "buckets" {
  description = "Default product bucket count, passed to transform (null: the live snapshot's count, else 64); an execution input {\"buckets\": n} overrides it."
  type        = number
  default     = null

  validation {
    # `? :`, not `||`: Terraform 1.11 evaluates both sides of `||` (null >= 1 is an error).
    condition     = var.buckets == null ? true : (var.buckets >= 1 && var.buckets <= 4096)
    error_message = "buckets must be null or from 1 to 4096."
  }
}

variable "lake_bucket_name" {
  description = "The lake bucket: the bucket Map's ItemReader reads state/runs/run=<id>/plan-items.json from it."
  type        = string
}

variable "map_max_concurrency" {
  description = "Map MaxConcurrency."
  type        = number
}

variable "schedule_expression" {
  description = "EventBridge schedule expression."
  type        = string
}

variable "schedule_enabled" {
  description = "Whether the schedule is enabled."
  type        = bool
}

variable "kms_key_arn" {
  description = "CMK of the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Log retention."
  type        = number
}

variable "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  type        = string
}

variable "no_publish_hours" {
  description = "Alarm when no run has published for this many hours (1 to 24: one day of hourly periods)."
  type        = number
  default     = 24
  validation {
    condition     = var.no_publish_hours >= 1 && var.no_publish_hours <= 24
    error_message = "no_publish_hours must be 1 to 24."
  }
}
