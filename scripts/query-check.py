#!/usr/bin/env python3
"""DuckDB reads the live snapshot through the query listing and agrees with the API.

Runs the pipeline twice into a temporary lake (`reviews run`: run q1, then run q2 with 500 more
reviews), starts `reviews serve` on a free loopback port, and checks, with DuckDB reading the
files named in curated/_athena/symlink.txt (what Athena's table reads in production):
  - the listing names exactly the curated files of curated/_latest.json, as absolute paths;
  - DuckDB's row and product counts equal the API's /health `rows` and `products`;
  - for a sample of products (the most reviewed ones and a seeded random draw), the top 5
    review ids by `ORDER BY relevance DESC, review_id` equal GET /reviews/{id}/top?limit=5.
Then rolls back to q1 (`reviews rollback q1`), waits until the API serves q1, and checks again.
Exits non-zero with a message on any mismatch; stops the server in every case.

    scripts/query-check.py [--bin target/debug/reviews] [--reviews 3000] [--sample 20]

Needs the `duckdb` package (scripts/test-env.sh installs it into the test venv).
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
LISTING = "curated/_athena/symlink.txt"
TOP = 5
# Loopback only: never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Mismatch(Exception):
    pass


def get_json(base, path):
    try:
        with HTTP.open(base + path, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def wait_for(base, run_id, timeout=60):
    """Waits until /health is 200 and serves `run_id`; returns the health document."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, body = get_json(base, "/health")
            last = (status, body)
            if status == 200 and body.get("run_id") == run_id:
                return body
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError) as e:
            last = repr(e)
        time.sleep(0.2)
    raise Mismatch(f"the API did not serve run {run_id} within {timeout} s (last /health: {last})")


def check_snapshot(lake, base, health, sample):
    # The listing against the commit point.
    latest = json.loads((lake / "curated/_latest.json").read_text())
    lines = (lake / LISTING).read_text().splitlines()
    expected = [str((lake / k).resolve()) for k in latest["keys"]]
    if lines != expected:
        raise Mismatch(f"{LISTING} lists {len(lines)} files, _latest.json {len(expected)}: "
                       f"{sorted(set(lines) ^ set(expected))[:5]}")
    if not lines or not all(os.path.isabs(p) and os.path.isfile(p) for p in lines):
        raise Mismatch(f"{LISTING}: every line must be the absolute path of an existing file")

    # The README's query ("Query the data"): the listing read by DuckDB itself.
    db = duckdb.connect()
    db.execute(f"SET VARIABLE curated = (SELECT string_split(trim(content, chr(10)), chr(10)) "
               f"FROM read_text('{str(lake / LISTING).replace(chr(39), chr(39) * 2)}'))")
    db.execute("CREATE TEMP VIEW curated AS SELECT * FROM read_parquet(getvariable('curated'))")
    rows, products = db.execute("SELECT count(*), count(DISTINCT product_id) FROM curated").fetchone()
    if (rows, products) != (health["rows"], health["products"]):
        raise Mismatch(f"DuckDB counts {rows} rows / {products} products, the API's /health "
                       f"{health['rows']} / {health['products']}")

    # The most reviewed products, then a seeded random draw of the others.
    by_count = [p for p, in db.execute(
        "SELECT product_id FROM curated GROUP BY product_id ORDER BY count(*) DESC, product_id").fetchall()]
    many = by_count[: sample // 2]
    rest = by_count[sample // 2:]
    picked = many + random.Random(7).sample(rest, min(len(rest), sample - len(many)))
    for product in picked:
        mine = [r for r, in db.execute(
            "SELECT review_id FROM curated WHERE product_id = ? "
            "ORDER BY relevance DESC, review_id LIMIT ?", [product, TOP]).fetchall()]
        status, body = get_json(base, f"/reviews/{urllib.parse.quote(product, safe='')}/top?limit={TOP}")
        if status != 200:
            raise Mismatch(f"GET /reviews/{product}/top: HTTP {status} {body}")
        if body["run_id"] != health["run_id"]:
            raise Mismatch(f"GET /reviews/{product}/top answered from run {body['run_id']}, "
                           f"expected {health['run_id']}")
        api = [r["review_id"] for r in body["reviews"]]
        if mine != api:
            raise Mismatch(f"product {product}: DuckDB's top {TOP} {mine} != the API's {api}")
    most, = db.execute("SELECT count(*) FROM curated WHERE product_id = ?", [by_count[0]]).fetchone()
    print(f"query-check: run {health['run_id']}: {len(lines)} listed files, {rows} rows, "
          f"{products} products; the top {TOP} of {len(picked)} products ({len(many)} most reviewed, "
          f"up to {most} reviews) agree with the API", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    ap.add_argument("--bin", default=os.environ.get("REVIEWS_BIN", str(target / "debug" / "reviews")))
    ap.add_argument("--reviews", type=int, default=3000)
    ap.add_argument("--sample", type=int, default=20)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"query-check: no reviews binary at {args.bin} (cargo build -p reviews-cli)")

    server = None
    # SIGTERM (e.g. from a timeout) goes through the cleanup below as well.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="query-check-") as work:
        lake = Path(work) / "lake"
        try:
            # Two sizes, so that the counts tell the two snapshots apart.
            for run_id, seed, n in (("q1", 1, args.reviews), ("q2", 2, args.reviews + 500)):
                subprocess.run([args.bin, "run", "--lake", str(lake), "--synthetic", str(n),
                                "--seed", str(seed), "--run-id", run_id, "--buckets", "8",
                                "--classifier", "keywords"], check=True, stdout=subprocess.DEVNULL)
            out = open(Path(work) / "serve.out", "w+")
            err = open(Path(work) / "serve.err", "w+")
            server = subprocess.Popen([args.bin, "serve", "--lake", str(lake), "--addr", "127.0.0.1:0",
                                       "--reload-secs", "1", "--no-storefront"], stdout=out, stderr=err)
            base = None
            for _ in range(300):
                text = Path(out.name).read_text()
                if "http://" in text:
                    base = "http://" + text.split("http://", 1)[1].split("/", 1)[0]
                    break
                if server.poll() is not None:
                    break
                time.sleep(0.1)
            if base is None:
                raise Mismatch(f"reviews serve did not start: {Path(err.name).read_text()[-2000:]}")

            check_snapshot(lake, base, wait_for(base, "q2"), args.sample)
            # Rollback moves the listing too; the API follows the pointer within --reload-secs.
            subprocess.run([args.bin, "rollback", "--lake", str(lake), "q1"], check=True,
                           stdout=subprocess.DEVNULL)
            check_snapshot(lake, base, wait_for(base, "q1"), args.sample)
        except Mismatch as e:
            print(f"query-check FAILED: {e}", file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as e:
            print(f"query-check FAILED: {' '.join(e.cmd)} exited {e.returncode}", file=sys.stderr)
            return 1
        finally:
            if server is not None and server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
