# The Step Functions state machine from statemachine.asl.json, its schedule and its alarms.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}:states:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  sm_arn     = "${local.arn_prefix}:stateMachine:${var.name}"

  # templatefile() fills the ${...} placeholders of the ASL (the same names that
  # scripts/infra/render_asl.py fills for LocalStack). Numbers are passed as strings and read back
  # by States.StringToJson in the "Configure" state, so the committed file stays valid JSON.
  # The bucket Map is DISTRIBUTED in the committed file (LocalStack runs it too): each changed
  # product bucket is a child workflow execution, and its items are read from the lake by an
  # ItemReader (s3:GetObject on state/runs/, below).
  definition = jsonencode(jsondecode(templatefile(var.asl_path, {
    ExtractFunctionArn   = var.function_arns["extract"]
    ArchiveFunctionArn   = var.function_arns["archive"]
    TransformFunctionArn = var.function_arns["transform"]
    ScoreFunctionArn     = var.function_arns["score"]
    PublishFunctionArn   = var.function_arns["publish"]
    Buckets              = var.buckets == null ? "null" : tostring(var.buckets)
    MapMaxConcurrency    = tostring(var.map_max_concurrency)
    LakeBucket           = var.lake_bucket_name
  })))
}

# ----------------------------------------------------------------------------------------------
# Execution role: invoke the five stage functions; read the bucket Map's items; run its child
# executions; logs; traces.
# ----------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_states" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${var.name}-sfn"
  assume_role_policy = data.aws_iam_policy_document.assume_states.json
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid       = "InvokeStageFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for arn in values(var.function_arns) : [arn, "${arn}:*"]])
  }

  statement {
    # The ItemReader of the bucket Map: transform's state/runs/run=<id>/plan-items.json. The lake
    # is SSE-S3, so no kms:Decrypt is needed.
    sid       = "DistributedMapItemReader"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.lake_bucket_name}/state/runs/*"]
  }

  statement {
    sid       = "DistributedMapChildExecutions"
    actions   = ["states:StartExecution"]
    resources = [local.sm_arn]
  }

  statement {
    # Child executions of a map run are named <state machine>/<map run label>:<id>.
    sid     = "DistributedMapChildExecutionControl"
    actions = ["states:DescribeExecution", "states:StopExecution"]
    resources = [
      "${local.arn_prefix}:execution:${var.name}/*",
      "${local.arn_prefix}:execution:${var.name}:*",
    ]
  }

  statement {
    # CloudWatch Logs vended-log delivery APIs do not support resource-level permissions.
    #checkov:skip=CKV_AWS_111:Log delivery actions (CreateLogDelivery, ...) only accept Resource "*" (AWS Step Functions logging docs).
    #checkov:skip=CKV_AWS_356:Same: these log delivery actions cannot be scoped to a resource.
    sid = "VendedLogDelivery"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    # Instead of AWSXRayDaemonWriteAccess: what Step Functions tracing uses, without
    # GetSamplingStatisticSummaries.
    #checkov:skip=CKV_AWS_356:X-Ray trace and sampling actions support no resource-level permissions.
    sid = "Tracing"
    actions = [
      "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    ]
    resources = ["*"] # these actions support no resource-level scoping
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "invoke-stages"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}


resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_sfn_state_machine" "this" {
  name       = var.name
  type       = "STANDARD"
  role_arn   = aws_iam_role.state_machine.arn
  definition = local.definition

  logging_configuration {
    # Payloads are small JSON documents (run id, keys, counts): no rows, no secrets.
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  depends_on = [aws_iam_role_policy.state_machine]
}

# ----------------------------------------------------------------------------------------------
# Schedule: an EventBridge rule starts one execution with input {"trigger": "schedule"} (the run
# id is then date + execution name; {} would do in AWS, but LocalStack drops an empty target input,
# and the same input everywhere keeps the two identical).
# ----------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_events" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-schedule"
  assume_role_policy = data.aws_iam_policy_document.assume_events.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "start-execution"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name}-schedule"
  description         = "Starts the ${var.name} state machine"
  schedule_expression = var.schedule_expression
  state               = var.schedule_enabled ? "ENABLED" : "DISABLED"
}

resource "aws_cloudwatch_event_target" "schedule" {
  rule     = aws_cloudwatch_event_rule.schedule.name
  arn      = aws_sfn_state_machine.this.arn
  role_arn = aws_iam_role.scheduler.arn
  input    = jsonencode({ trigger = "schedule" })
}

# ----------------------------------------------------------------------------------------------
# Alarms: a failed (or timed-out) execution; an archive deferred (MongoDB unavailable).
# ----------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "failed" {
  alarm_name          = "${var.name}-execution-failed"
  alarm_description   = "An execution of ${var.name} failed, timed out or was aborted: see its failure path output (step, error, cause)."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "timed_out" {
  alarm_name          = "${var.name}-execution-timed-out"
  alarm_description   = "An execution of ${var.name} timed out."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsTimedOut"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_log_metric_filter" "archive_deferred" {
  name           = "${var.name}-archive-deferred"
  log_group_name = aws_cloudwatch_log_group.state_machine.name
  pattern        = "{ ($.type = \"PassStateEntered\") && ($.details.name = \"ArchiveDeferred\") }"

  metric_transformation {
    name          = "ArchiveDeferred"
    namespace     = "Reviews/Pipeline"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "archive_deferred" {
  alarm_name          = "${var.name}-archive-deferred"
  alarm_description   = "The MongoDB archive was deferred (MongoDB unavailable?). The run succeeded; the next run archives the backlog. Alarms if it keeps happening."
  namespace           = "Reviews/Pipeline"
  metric_name         = "ArchiveDeferred"
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "aborted" {
  alarm_name          = "${var.name}-execution-aborted"
  alarm_description   = "An execution of ${var.name} was aborted (stopped by hand or by a redeploy): its run's rows are extracted again by the next run."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsAborted"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
}

# A publish that committed: CountChanges is entered only after Publish succeeded (a failed
# publish goes through its Catch to PublishFailed).
resource "aws_cloudwatch_log_metric_filter" "published" {
  name           = "${var.name}-published"
  log_group_name = aws_cloudwatch_log_group.state_machine.name
  pattern        = "{ ($.type = \"PassStateEntered\") && ($.details.name = \"CountChanges\") }"

  metric_transformation {
    name          = "Published"
    namespace     = "Reviews/Pipeline"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "no_publish" {
  alarm_name          = "${var.name}-no-publish"
  alarm_description   = "No run of ${var.name} published in the last ${var.no_publish_hours} hours: the storefront serves an ageing snapshot."
  namespace           = "Reviews/Pipeline"
  metric_name         = "Published"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = var.no_publish_hours
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  # No data at all (no execution logged) is the case this alarm is for.
  treat_missing_data = "breaching"
  alarm_actions      = [var.alarm_topic_arn]
  ok_actions         = [var.alarm_topic_arn]
}
