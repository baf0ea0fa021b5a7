#!/usr/bin/env bash
# Offline checks of statemachine.asl.json and infra/ (no provider download is possible here, so no
# terraform init/validate). See scripts/infra/check_infra.py for the list.
#
#   scripts/infra-check.sh                              everything; fails if functions/<stage> or
#                                                       the error names are missing from the Rust code
#   scripts/infra-check.sh --allow-missing-functions    those two become warnings
#   scripts/infra-check.sh --no-checkov                 skip the checkov scan
#   scripts/infra-check.sh --self-test                  then break copies of infra/ on purpose and
#                                                       expect the IAM rules to fail on each
#                                                       (scripts/infra/check_infra_selftest.py)
#
# Installs python-hcl2 and checkov (PyPI) into .cache/infra-venv on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${INFRA_VENV:-$ROOT/.cache/infra-venv}"
PY="${INFRA_PYTHON:-python3}"
HCL2_PIN="python-hcl2==8.1.4"
CHECKOV_PIN="checkov==3.3.30"

if ! "$VENV/bin/python" -c 'import hcl2' 2>/dev/null || [ ! -x "$VENV/bin/checkov" ]; then
  echo "infra-check: installing $HCL2_PIN $CHECKOV_PIN into $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "$HCL2_PIN" "$CHECKOV_PIN"
fi

# checkov: no network calls (guidelines download, telemetry) from this offline machine.
export BC_SKIP_MAPPING=TRUE CHECKOV_SKIP_DOWNLOAD=true
self_test=0
args=()
for a in "$@"; do
  if [ "$a" = "--self-test" ]; then self_test=1; else args+=("$a"); fi
done
if [ "$self_test" -eq 0 ]; then
  exec "$VENV/bin/python" "$ROOT/scripts/infra/check_infra.py" --venv-bin "$VENV/bin" ${args[@]+"${args[@]}"}
fi
"$VENV/bin/python" "$ROOT/scripts/infra/check_infra.py" --venv-bin "$VENV/bin" ${args[@]+"${args[@]}"}
echo
echo "infra-check: self-test of the IAM rules"
exec "$VENV/bin/python" "$ROOT/scripts/infra/check_infra_selftest.py"
