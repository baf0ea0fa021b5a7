# ----------------------------------------------------------------------------------------------
# The right to erasure in production: the reviews-erase Lambda (functions/erase), the same
# workflow as `reviews erase`: the buyer goes on state/erased_buyers.json (conditional write),
# their MongoDB archive documents are deleted, and every object of the lake (raw/, rejects/,
# cleaned/, curated/ of every run kept for rollback, state/) is scrubbed of them, with the
# manifests and run records that name a rewritten file updated. The administrator starts it:
#   aws lambda invoke --function-name <project>-erase --payload '{"buyer_id":"..."}' out.json
#
# Not a stage of the state machine (not in local.pipeline_stages). Everything else comes from
# the tables of main.tf like the stages': its role and policy (local.function_grants["erase"]:
# every data prefix of the lake, the MongoDB secret, its own logs and environment, X-Ray, the VPC
# network interfaces), its place in the MongoDB secret's resource policy, its name, zip and log
# group (local.function_names, zip_paths, log_group_arns), its environment
# (local.stage_env["erase"]), its errors and throttles alarms (alarms.tf) and the administrator's
# invoke grant (data.aws_iam_policy_document.admin, StartErasure).
# ----------------------------------------------------------------------------------------------

locals {
  # What the errors alarm of a function says when it is not the default (alarms.tf).
  errors_alarm_descriptions = {
    erase = "An erasure failed: the buyer is on the erased list (no run admits them) but the archive or the lake may still hold them. Read the function's log and invoke it again."
  }
}

module "erase_function" {
  source = "./modules/lambda_function"

  name         = local.function_names["erase"]
  description  = "Right to erasure: {buyer_id} -> erased list, MongoDB archive, every lake object scrubbed"
  zip_path     = local.zip_paths["erase"]
  role_arn     = aws_iam_role.function["erase"].arn
  architecture = var.lambda_architecture
  # Reads and rewrites one object at a time; 15 minutes is the Lambda limit. The erasure takes
  # the run lease for 30 minutes, so a timed-out invocation keeps the schedule out no longer.
  memory_mb = 2048
  timeout_s = 900
  # One erasure at a time (a second one waits for the lease anyway).
  reserved_concurrency = 1
  environment          = local.stage_env["erase"]
  # In the VPC like the archive stage: it reaches MongoDB. No layer (no PostgreSQL CA bundle).
  vpc_subnet_ids         = var.vpc_subnet_ids
  vpc_security_group_ids = var.vpc_security_group_ids
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
  log_level              = var.log_level

  depends_on = [aws_iam_role_policy.function]
}
