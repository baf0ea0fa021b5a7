#!/usr/bin/env bash
# Regenerate the two contracts of the state machine, then check them against each other:
#   statemachine.asl.json   from statemachine.py (next to it);
#   functions/schemas/      the stage payloads' JSON schemas, from the Rust types.
# The test command runs the same checks without rewriting anything (infra-check.sh and the
# payload_schemas test), so a change to one side that the other does not follow fails there.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 statemachine.py > statemachine.asl.json.tmp
mv statemachine.asl.json.tmp statemachine.asl.json
echo "statemachine.asl.json regenerated from statemachine.py" >&2
REVIEWS_UPDATE_SCHEMAS=1 cargo test --workspace --test payload_schemas
git status --short -- statemachine.asl.json functions/schemas
