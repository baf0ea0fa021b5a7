"""Secret scan of the files the repository holds: detect-secrets over `git ls-files` (tracked
files, plus untracked ones that are not ignored, so a secret is caught before its first
commit). Every finding must be explained in scripts/security/secrets-allowlist.tsv (path, type,
hashed secret, reason); any other finding fails the check. Values are never printed: only the
file, line, type and the scanner's SHA-1 of the value.

Usage: python check_secrets.py DETECT_SECRETS_BIN   (run by scripts/security-check.sh)
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALLOWLIST = os.path.join(ROOT, "scripts", "security", "secrets-allowlist.tsv")


def tracked_files():
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout
    names = sorted({n.decode() for n in out.split(b"\0") if n})
    # A tracked file deleted in the work tree has nothing left to scan.
    return [n for n in names if os.path.isfile(os.path.join(ROOT, n))]


def allowlist():
    entries = {}
    with open(ALLOWLIST, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 4 or not cols[3].strip():
                sys.exit(f"{ALLOWLIST}:{number}: need 4 tab-separated columns, the last a reason")
            entries[(cols[0], cols[1], cols[2])] = cols[3]
    return entries


def main():
    scanner = sys.argv[1]
    files = tracked_files()
    # The allowlist holds hashes of flagged values, which look like secrets themselves.
    rel_allowlist = os.path.relpath(ALLOWLIST, ROOT)
    files = [f for f in files if f != rel_allowlist]
    results = {}
    # In batches, to stay under the command-line length limit.
    for i in range(0, len(files), 500):
        out = subprocess.run(
            [scanner, "scan", *files[i:i + 500]],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        results.update(json.loads(out)["results"])
    allowed = allowlist()
    used = set()
    unexplained = []
    total = 0
    for path, findings in sorted(results.items()):
        for f in findings:
            total += 1
            key = (path, f["type"], f["hashed_secret"])
            if key in allowed:
                used.add(key)
            else:
                unexplained.append((path, f["line_number"], f["type"], f["hashed_secret"]))
    print(f"secrets: detect-secrets scanned {len(files)} files: {total} finding(s), "
          f"{total - len(unexplained)} explained in {rel_allowlist}, {len(unexplained)} not")
    for key in sorted(set(allowed) - used):
        print(f"secrets: note: allowlist entry no longer found (remove it): {key[0]} {key[1]}")
    for path, line, kind, hashed in unexplained:
        print(f"secrets: UNEXPLAINED {path}:{line}: {kind} (hashed_secret {hashed})")
    if unexplained:
        print("secrets: remove the secret (and rotate it if it was real), or, if it is not a "
              "secret, add a line with the reason to " + rel_allowlist)
        sys.exit(1)


if __name__ == "__main__":
    main()
