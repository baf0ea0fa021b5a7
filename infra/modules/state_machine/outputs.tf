output "arn" {
  description = "State machine ARN."
  value       = aws_sfn_state_machine.this.arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = aws_iam_role.state_machine.arn
}

output "log_group_arn" {
  description = "Execution log group ARN."
  value       = aws_cloudwatch_log_group.state_machine.arn
}

output "schedule_rule" {
  description = "EventBridge rule name."
  value       = aws_cloudwatch_event_rule.schedule.name
}
