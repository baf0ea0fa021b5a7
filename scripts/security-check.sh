#!/usr/bin/env bash
# Security checks of the repository and its dependency tree.
#
#   scripts/security-check.sh            both checks
#   scripts/security-check.sh secrets    (a) only
#   scripts/security-check.sh deps       (b) only
#
# (a) Secrets: detect-secrets (PyPI, pinned, in .cache/security-venv) scans every file git
#     holds or would add (`git ls-files --cached --others --exclude-standard`). Any finding
#     not explained, with a reason, in scripts/security/secrets-allowlist.tsv fails the check.
# (b) Dependencies: cargo deny (crates.io, pinned, installed with `cargo install --locked` if
#     missing; the first install compiles for several minutes) with deny.toml, on the root
#     workspace and on fuzz/: licenses (only those listed), bans (duplicate versions are
#     warnings), sources (crates.io only).
#     Advisories: EXCEPTION, see deny.toml. The RustSec database is a git repository on GitHub,
#     which this project's machines and CI cannot reach, so cargo deny runs --offline and
#     `check advisories` runs only when a local copy exists in $CARGO_HOME/advisory-dbs/
#     (filled by `cargo deny fetch` where GitHub is reachable, or from a local clone given as
#     ADVISORY_DB=/path/to/advisory-db); otherwise it is skipped with a note.
# Exit status: non-zero if any check fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SCANNER_PIN="detect-secrets==1.5.0"
CARGO_DENY_VERSION="0.20.2"
# cargo-deny's directory for the RustSec database at its default URL (db-urls unset).
ADVISORY_DIR_NAME="advisory-db-3157b0e258782691"

what="${1:-all}"
failed=()

check_secrets() {
  local venv="$root/.cache/security-venv"
  if ! "$venv/bin/detect-secrets" --version 2>/dev/null | grep -qx "${SCANNER_PIN#*==}"; then
    echo "secrets: installing $SCANNER_PIN into ${venv#"$root"/}"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$SCANNER_PIN"
  fi
  "$venv/bin/python" scripts/security/check_secrets.py "$venv/bin/detect-secrets"
}

check_deps() {
  if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
    echo "deps: installing cargo-deny $CARGO_DENY_VERSION from crates.io (compiles for several minutes)"
    CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 19 \
      cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
  fi
  local dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
  if [ -n "${ADVISORY_DB:-}" ]; then
    echo "deps: advisory database from the local copy $ADVISORY_DB"
    rm -rf "${dbs:?}/$ADVISORY_DIR_NAME"
    mkdir -p "$dbs"
    git clone --quiet "$ADVISORY_DB" "$dbs/$ADVISORY_DIR_NAME"
  fi
  local checks=(licenses bans sources)
  if [ -d "$dbs/$ADVISORY_DIR_NAME/crates" ]; then
    checks+=(advisories)
    echo "deps: advisory database: local copy of $(git -C "$dbs/$ADVISORY_DIR_NAME" log -1 --format=%cs HEAD 2>/dev/null || echo '?') in $dbs"
  else
    echo "deps: NOTE: advisories check SKIPPED: no local RustSec advisory database in $dbs/."
    echo "deps:       The database is a git repository on GitHub, which this machine cannot reach"
    echo "deps:       (only package registries are). Where GitHub is reachable, run \`cargo deny fetch\`"
    echo "deps:       once, or pass a local clone: ADVISORY_DB=/path/to/advisory-db $0 deps"
  fi
  local rc=0 name manifest log
  mkdir -p "$root/.cache/security"
  for name in root fuzz; do
    manifest=Cargo.toml
    [ "$name" = fuzz ] && manifest=fuzz/Cargo.toml
    log="$root/.cache/security/cargo-deny-$name.log"
    # cargo deny runs --offline: fetch every platform's crates first (a fresh machine has only
    # those its own builds downloaded, and cargo metadata needs them all).
    cargo fetch --locked --manifest-path "$manifest" >"$log" 2>&1 || { cat "$log"; rc=1; continue; }
    echo "deps: cargo deny check ${checks[*]} ($manifest)"
    if nice -n 19 cargo deny --offline --locked --color never --manifest-path "$manifest" --config deny.toml \
      check "${checks[@]}" >"$log" 2>&1; then :; else rc=1; fi
    # Errors in full; warnings (duplicate versions, ignored advisories) counted, in the log.
    sed -n '/^error/,/^$/p' "$log"
    # cargo deny itself failed (e.g. Cargo.lock out of date: --locked never rewrites it).
    if grep -q 'cannot update the lock file' "$log"; then
      echo "deps:   $manifest: its Cargo.lock is out of date with the manifests (cargo deny runs --locked"
      echo "deps:   and never rewrites it): refresh it with any cargo build, then run this again"
    else
      grep '\[ERROR\]' "$log" | head -5
    fi
    echo "deps:   $(grep -c '^warning' "$log" || true) warning(s) (see ${log#"$root"/}); $(tail -1 "$log")"
  done
  return "$rc"
}

case "$what" in
  all | secrets) check_secrets || failed+=(secrets) ;;&
  all | deps) check_deps || failed+=(deps) ;;
  secrets) ;;
  *) echo "usage: $0 [secrets|deps]" >&2; exit 2 ;;
esac

if [ ${#failed[@]} -ne 0 ]; then
  echo "security-check: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "security-check: passed"
