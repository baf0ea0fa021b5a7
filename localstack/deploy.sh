#!/usr/bin/env bash
# Create (or update) the pipeline's resources in the running LocalStack. Idempotent.
#
#   localstack/deploy.sh
#
# Environment (all optional):
#   REVIEWS_BUCKET          lake bucket name                    (default reviews-lake)
#   REVIEWS_STATE_MACHINE   state machine name                  (default reviews-pipeline)
#   REVIEWS_SCHEDULE        EventBridge schedule expression     (default rate(1 day))
#   REVIEWS_SCHEDULE_STATE  ENABLED | DISABLED                  (default ENABLED)
#   REVIEWS_BUCKETS         product buckets of the dataset      (default null: the live snapshot's, else 64)
#   REVIEWS_MAP_CONCURRENCY Map MaxConcurrency                  (default 4)
#   REVIEWS_PG_URI          value stored in the PostgreSQL secret (default: loopback etl_reader URI)
#   REVIEWS_MONGO_URI       value stored in the MongoDB secret    (default: loopback URI)
#
# No Lambda function is created in LocalStack: with DISTRIBUTED_MODE=1 and AWS_ENDPOINT_URL_LAMBDA
# (see up.sh), Step Functions sends Invoke straight to the bridge, which does not need LocalStack's
# Lambda records (verified: an execution succeeds with `aws lambda list-functions` empty).
#
# Writes $LS_CACHE/outputs.env: the variables a Lambda (cargo lambda watch), a test or the CLI
# needs to use these resources (REVIEWS_LAKE_URI, REVIEWS_*_SECRET_ID, AWS_ENDPOINT_URL, ...).
set -euo pipefail
source "$(dirname "$0")/env.sh"

SCHEDULE="${REVIEWS_SCHEDULE:-rate(1 day)}"
SCHEDULE_STATE="${REVIEWS_SCHEDULE_STATE:-ENABLED}"
BUCKETS="${REVIEWS_BUCKETS:-null}"
MAP_CONCURRENCY="${REVIEWS_MAP_CONCURRENCY:-4}"
PG_SECRET_ID="reviews/postgres"
MONGO_SECRET_ID="reviews/mongodb"
SFN_ROLE="arn:aws:iam::$LS_ACCOUNT:role/reviews-state-machine"
EVENTS_ROLE="arn:aws:iam::$LS_ACCOUNT:role/reviews-scheduler"
SM_ARN="arn:aws:states:$LS_REGION:$LS_ACCOUNT:stateMachine:$REVIEWS_STATE_MACHINE"
t0=$(date +%s.%N)

curl -fsS -o /dev/null --max-time 2 "$LS_ENDPOINT/_localstack/health" ||
  { echo "deploy: LocalStack is not running at $LS_ENDPOINT (localstack/up.sh)" >&2; exit 1; }

# --- the lake bucket: private, SSE-S3, versioned, TLS-only policy (the emulator does not enforce
#     policy conditions, see docs/ARCHITECTURE.md section 8.3; the calls are made so the setup
#     mirrors infra/).
if ! awsls s3api head-bucket --bucket "$REVIEWS_BUCKET" >/dev/null 2>&1; then
  awsls s3api create-bucket --bucket "$REVIEWS_BUCKET" >/dev/null
fi
awsls s3api put-public-access-block --bucket "$REVIEWS_BUCKET" --public-access-block-configuration \
  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
awsls s3api put-bucket-encryption --bucket "$REVIEWS_BUCKET" --server-side-encryption-configuration \
  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
awsls s3api put-bucket-versioning --bucket "$REVIEWS_BUCKET" --versioning-configuration Status=Enabled
awsls s3api put-bucket-policy --bucket "$REVIEWS_BUCKET" --policy "$(cat <<JSON
{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*",
 "Action":"s3:*","Resource":["arn:aws:s3:::$REVIEWS_BUCKET","arn:aws:s3:::$REVIEWS_BUCKET/*"],
 "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}
JSON
)"

# --- secrets: created with a value here because this is a throwaway emulator; in AWS Terraform
#     creates them empty and the value is set out of band (infra/README.md).
put_secret() { # id value
  if awsls secretsmanager describe-secret --secret-id "$1" >/dev/null 2>&1; then
    awsls secretsmanager put-secret-value --secret-id "$1" --secret-string "$2" >/dev/null
  else
    awsls secretsmanager create-secret --name "$1" --secret-string "$2" >/dev/null
  fi
}
put_secret "$PG_SECRET_ID" "${REVIEWS_PG_URI:-postgres://etl_reader@127.0.0.1:5432/amazonreviews}"
put_secret "$MONGO_SECRET_ID" "${REVIEWS_MONGO_URI:-mongodb://127.0.0.1:27017/reviews}"

# --- roles (not enforced by the emulator; Step Functions assumes its role through STS).
for r in reviews-state-machine:states.amazonaws.com reviews-scheduler:events.amazonaws.com; do
  name="${r%%:*}"; principal="${r#*:}"
  awsls iam get-role --role-name "$name" >/dev/null 2>&1 ||
    awsls iam create-role --role-name "$name" --assume-role-policy-document \
      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"$principal\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
done

# --- the state machine from statemachine.asl.json (same placeholders as Terraform's templatefile;
#     the bucket Map's ItemReader reads the run's plan items from the lake bucket).
definition="$LS_CACHE/statemachine.rendered.json"
python3 "$LS_ROOT/scripts/infra/render_asl.py" "$LS_ROOT/statemachine.asl.json" \
  --region "$LS_REGION" --account "$LS_ACCOUNT" \
  "Buckets=$BUCKETS" "MapMaxConcurrency=$MAP_CONCURRENCY" "LakeBucket=$REVIEWS_BUCKET" >"$definition"
if awsls stepfunctions describe-state-machine --state-machine-arn "$SM_ARN" >/dev/null 2>&1; then
  awsls stepfunctions update-state-machine --state-machine-arn "$SM_ARN" \
    --definition "file://$definition" --role-arn "$SFN_ROLE" >/dev/null
else
  awsls stepfunctions create-state-machine --name "$REVIEWS_STATE_MACHINE" --type STANDARD \
    --definition "file://$definition" --role-arn "$SFN_ROLE" >/dev/null
fi

# --- the schedule: an EventBridge rule whose target starts the state machine with the input
#     {"trigger":"schedule"} (not {}: LocalStack 2026.3 drops a target whose input is empty).
# LocalStack 2026.3 creates the rule's timer in PutTargets, with the rule's state at that moment,
# and never updates or drops it (PutRule/EnableRule/DisableRule do not touch it): so the target is
# put only when the rule is new or changed, and a changed schedule needs down.sh/up.sh to drop the
# old timer.
current=$(awsls events describe-rule --name reviews-schedule 2>/dev/null || true)
targets=$(awsls events list-targets-by-rule --rule reviews-schedule 2>/dev/null || true)
if [ -n "$current" ] && echo "$current" | grep -qF "\"ScheduleExpression\": \"$SCHEDULE\"" &&
   echo "$current" | grep -qF "\"State\": \"$SCHEDULE_STATE\"" && echo "$targets" | grep -qF "$SM_ARN"; then
  echo "deploy: schedule unchanged"
else
  [ -n "$current" ] && echo "deploy: note: the schedule changed; LocalStack keeps the previous timer until down.sh/up.sh" >&2
  awsls events put-rule --name reviews-schedule --schedule-expression "$SCHEDULE" --state "$SCHEDULE_STATE" \
    --description "Starts $REVIEWS_STATE_MACHINE" >/dev/null
  awsls events put-targets --rule reviews-schedule --targets \
    "[{\"Id\":\"state-machine\",\"Arn\":\"$SM_ARN\",\"RoleArn\":\"$EVENTS_ROLE\",\"Input\":\"{\\\"trigger\\\":\\\"schedule\\\"}\"}]" >/dev/null
fi

cat >"$LS_CACHE/outputs.env" <<ENV
# written by localstack/deploy.sh: source it (set -a) before cargo lambda watch, tests or the CLI
AWS_ENDPOINT_URL=$LS_ENDPOINT
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=$LS_REGION
AWS_DEFAULT_REGION=$LS_REGION
REVIEWS_LAKE_URI=s3://$REVIEWS_BUCKET
REVIEWS_PG_SECRET_ID=$PG_SECRET_ID
REVIEWS_MONGO_SECRET_ID=$MONGO_SECRET_ID
REVIEWS_STATE_MACHINE_ARN=$SM_ARN
ENV
python3 -c "import sys,time; print(f'deploy: bucket {sys.argv[1]}, secrets, state machine {sys.argv[2]}, rule reviews-schedule ({sys.argv[3]}, {sys.argv[4]}) in {time.time()-float(sys.argv[5]):.1f}s')" \
  "$REVIEWS_BUCKET" "$SM_ARN" "$SCHEDULE" "$SCHEDULE_STATE" "$t0"
