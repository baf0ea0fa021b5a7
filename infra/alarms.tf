# ----------------------------------------------------------------------------------------------
# Alarms and dashboard beside the state machine's own (modules/state_machine: failed, timed out,
# aborted executions, archive deferred, no publish). All alarms notify the alarm topic.

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each            = local.function_names
  alarm_name          = "${each.value}-errors"
  alarm_description   = lookup(local.errors_alarm_descriptions, each.key, "The ${each.key} function returned errors (for a stage: after the state machine's retries it fails the run; for the API: 5xx to the storefront). See its log group.")
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  depends_on = [module.stage, module.api_function, module.erase_function]
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each            = local.function_names
  alarm_name          = "${each.value}-throttles"
  alarm_description   = "The ${each.key} function was throttled (its reserved concurrency, var.functions, is too low for the load)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]

  depends_on = [module.stage, module.api_function, module.erase_function]
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${local.prefix}-api-5xx"
  alarm_description   = "The HTTP API answered 5xx (503: no valid dataset or the lake unreachable; see /health and the API function's log)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = module.api.api_id, Stage = "$default" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.api_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  alarm_name          = "${local.prefix}-api-latency-p99"
  alarm_description   = "The HTTP API's p99 latency stayed above ${var.api_latency_p99_ms} ms for 15 minutes (cold starts, a cache too small for the traffic, or the lake slow)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiId = module.api.api_id, Stage = "$default" }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.api_latency_p99_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_dashboard" "pipeline" {
  dashboard_name = "${local.prefix}-${var.environment}"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Executions", region = var.region, stat = "Sum", period = 3600
          metrics = [
            for m in ["ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] :
            ["AWS/States", m, "StateMachineArn", module.state_machine.arn]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Published, archive deferred", region = var.region, stat = "Sum", period = 3600
          metrics = [
            ["Reviews/Pipeline", "Published"],
            ["Reviews/Pipeline", "ArchiveDeferred"],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Function errors and throttles", region = var.region, stat = "Sum", period = 300
          metrics = concat(
            [for s, n in local.function_names : ["AWS/Lambda", "Errors", "FunctionName", n]],
            [for s, n in local.function_names : ["AWS/Lambda", "Throttles", "FunctionName", n]],
          )
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "API: requests, 4xx, 5xx, p99 latency", region = var.region, period = 300
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiId", module.api.api_id, "Stage", "$default", { stat = "Sum" }],
            ["AWS/ApiGateway", "4xx", "ApiId", module.api.api_id, "Stage", "$default", { stat = "Sum" }],
            ["AWS/ApiGateway", "5xx", "ApiId", module.api.api_id, "Stage", "$default", { stat = "Sum" }],
            ["AWS/ApiGateway", "Latency", "ApiId", module.api.api_id, "Stage", "$default", { stat = "p99", yAxis = "right" }],
          ]
        }
      },
    ]
  })
}
