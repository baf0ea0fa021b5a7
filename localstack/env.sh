# Shared settings for localstack/*.sh (sourced). Override any of them in the environment.
# Loopback only: every address here is 127.0.0.1.
LS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_CACHE="${LS_CACHE:-$LS_ROOT/.cache/localstack}"          # state, logs, pid files (gitignored)
LS_VENV="${LS_VENV:-$LS_ROOT/.cache/localstack-venv}"       # Python 3.12 venv with LocalStack
# localstack-core 2026.3.0 imports warnings.deprecated (Python >= 3.13): 3.12 installs but fails to start.
LS_PYTHON="${LS_PYTHON:-/root/.pyenv/versions/3.13.0/bin/python3.13}"
LS_PORT="${LS_PORT:-4566}"                                  # LocalStack gateway
LAMBDA_BRIDGE_PORT="${LAMBDA_BRIDGE_PORT:-9001}"            # localstack/bridge.py
LAMBDA_WATCH_PORT="${LAMBDA_WATCH_PORT:-9000}"              # cargo lambda watch
LS_ENDPOINT="http://127.0.0.1:${LS_PORT}"
LS_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
LS_ACCOUNT="000000000000"                                   # LocalStack's default account
REVIEWS_BUCKET="${REVIEWS_BUCKET:-reviews-lake}"
REVIEWS_STATE_MACHINE="${REVIEWS_STATE_MACHINE:-reviews-pipeline}"
REVIEWS_FUNCTIONS="reviews-extract,reviews-archive,reviews-transform,reviews-score,reviews-publish,reviews-api,reviews-erase"
LOCALSTACK_PIN='localstack-core[runtime]==2026.3.0'
LOCALSTACK_EXTRA_PINS=('cbor2>=5.5,<6' 'pyopenssl==25.3.0' 'cryptography>=45.0.7,<47' 'service_identity')

# Clients (aws CLI from the venv, boto3, the Rust SDK) talk to LocalStack with dummy credentials.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="$LS_REGION"
export AWS_REGION="$LS_REGION"
export AWS_PAGER=""

awsls() { "$LS_VENV/bin/aws" --endpoint-url "$LS_ENDPOINT" --region "$LS_REGION" --output json "$@"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_http() { # url timeout_s
  local url="$1" deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
