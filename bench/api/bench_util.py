"""Helpers for scripts/bench-api.sh (run with the bench venv's python).

Subcommands:
  products LAKE OUT            write the distinct product ids of the live curated run, one a line
  free-port                    print a free TCP port on 127.0.0.1
  check BASE PRODUCT LIMIT     GET BASE/reviews/PRODUCT/top?limit=LIMIT, fail unless a well-formed
                               200; print the review ids (JSON) on stdout
  side OUT k=v ... [--wrk-json NAME=FILE ...]
                               gather one server's measurements into OUT (JSON)
  report OUT [--ours F] [--baseline F] k=v ...
                               print the comparison table and write the result JSON to OUT
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import urllib.error
import urllib.request


def cmd_products(lake: str, out: str) -> None:
    import pyarrow.parquet as pq

    with open(os.path.join(lake, "curated", "_latest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    seen: dict[str, None] = {}
    for key in manifest["keys"]:
        col = pq.read_table(os.path.join(lake, key), columns=["product_id"]).column("product_id")
        for pid in col.unique().to_pylist():
            seen.setdefault(pid, None)
    if not seen:
        sys.exit(f"no product ids in the curated parts of {lake}")
    with open(out, "w", encoding="utf-8") as f:
        for pid in seen:
            f.write(pid + "\n")
    print(len(seen))


def cmd_free_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def cmd_check(base: str, product: str, limit: str) -> None:
    url = f"{base}/reviews/{product}/top?limit={limit}"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"check: {url} answered HTTP {e.code}: {e.read()[:300]!r}")
    except OSError as e:
        sys.exit(f"check: {url} failed: {e}")
    if status != 200:
        sys.exit(f"check: {url} answered HTTP {status}")
    try:
        doc = json.loads(body)
    except ValueError:
        sys.exit(f"check: {url} did not answer JSON: {body[:300]!r}")
    problems = []
    if doc.get("product_id") != product:
        problems.append(f"product_id is {doc.get('product_id')!r}")
    reviews = doc.get("reviews")
    if not isinstance(reviews, list) or not reviews:
        problems.append("no reviews")
    elif len(reviews) > int(limit):
        problems.append(f"{len(reviews)} reviews for limit {limit}")
    else:
        for field in ("review_id", "rating", "text", "topics", "relevance", "review_date"):
            if field not in reviews[0]:
                problems.append(f"reviews[0] lacks {field}")
        rel = [r.get("relevance") for r in reviews]
        if any(a is None or b is None or a < b for a, b in zip(rel, rel[1:])):
            problems.append(f"relevance not descending: {rel}")
    if problems:
        sys.exit(f"check: {url}: " + "; ".join(problems) + f"\n{body[:500]!r}")
    print(json.dumps([r["review_id"] for r in reviews]))


def _kv(args: list[str]) -> dict:
    out = {}
    for a in args:
        k, _, v = a.partition("=")
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def cmd_side(out: str, args: list[str]) -> None:
    wrk = {}
    rest = []
    it = iter(args)
    for a in it:
        if a == "--wrk-json":
            name, _, path = next(it).partition("=")
            line = None
            with open(path, encoding="utf-8") as f:
                for ln in f:
                    if ln.startswith("BENCH_JSON "):
                        line = ln[len("BENCH_JSON "):]
            if line is None:
                sys.exit(f"side: no BENCH_JSON line in {path} (did wrk run?)")
            wrk[name] = json.loads(line)
        else:
            rest.append(a)
    doc = _kv(rest)
    if "health_file" in doc:
        with open(doc.pop("health_file"), encoding="utf-8") as f:
            try:
                doc["health"] = json.load(f)
            except ValueError:
                doc["health"] = None
    doc["wrk"] = wrk
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)


def _ms(us):
    return None if us is None else us / 1000.0


def _fmt(v, unit="", digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    return f"{v:,}{unit}"


def cmd_report(out: str, args: list[str]) -> None:
    sides = {}
    rest = []
    it = iter(args)
    for a in it:
        if a in ("--ours", "--baseline"):
            path = next(it)
            with open(path, encoding="utf-8") as f:
                sides[a[2:]] = json.load(f)
        else:
            rest.append(a)
    meta = _kv(rest)
    ours, base = sides.get("ours"), sides.get("baseline")

    def metric(side, *path):
        v = side
        for p in path:
            if not isinstance(v, dict) or p not in v:
                return None
            v = v[p]
        return v

    rows = [
        ("cold start to /health 200 (s)", "cold_start_ms", lambda s: _ms_to_s(metric(s, "cold_start_ms")), 3, "lower"),
        ("cold start to first answer (s)", "first_answer_ms", lambda s: _ms_to_s(metric(s, "first_answer_ms")), 3, "lower"),
        ("RSS after load (MiB)", None, lambda s: _kib_to_mib(metric(s, "rss_after_load_kib")), 1, "lower"),
        ("RSS after bench (MiB)", None, lambda s: _kib_to_mib(metric(s, "rss_after_bench_kib")), 1, "lower"),
        ("peak RSS, VmHWM (MiB)", None, lambda s: _kib_to_mib(metric(s, "peak_rss_kib")), 1, "lower"),
    ]
    for run, label in (("loaded", f"{meta.get('connections')} conns"), ("single", "1 conn")):
        rows += [
            (f"throughput, {label} (req/s)", None, (lambda r: lambda s: metric(s, "wrk", r, "rps"))(run), 1, "higher"),
            (f"p50, {label} (ms)", None, (lambda r: lambda s: _ms(metric(s, "wrk", r, "latency_us", "p50")))(run), 3, "lower"),
            (f"p99, {label} (ms)", None, (lambda r: lambda s: _ms(metric(s, "wrk", r, "latency_us", "p99")))(run), 3, "lower"),
            (f"max, {label} (ms)", None, (lambda r: lambda s: _ms(metric(s, "wrk", r, "latency_us", "max")))(run), 3, "lower"),
        ]

    ratios = {}

    def ratio(a, b):
        if a is None or b is None or b == 0:
            return None
        return a / b

    if ours and base:
        for run in ("loaded", "single"):
            ratios[f"throughput_ours_over_baseline_{run}"] = ratio(
                metric(ours, "wrk", run, "rps"), metric(base, "wrk", run, "rps"))
            ratios[f"p99_baseline_over_ours_{run}"] = ratio(
                metric(base, "wrk", run, "latency_us", "p99"), metric(ours, "wrk", run, "latency_us", "p99"))
            ratios[f"p50_baseline_over_ours_{run}"] = ratio(
                metric(base, "wrk", run, "latency_us", "p50"), metric(ours, "wrk", run, "latency_us", "p50"))
        ratios["cold_start_baseline_over_ours"] = ratio(metric(base, "cold_start_ms"), metric(ours, "cold_start_ms"))
        ratios["first_answer_baseline_over_ours"] = ratio(metric(base, "first_answer_ms"), metric(ours, "first_answer_ms"))
        ratios["peak_rss_baseline_over_ours"] = ratio(metric(base, "peak_rss_kib"), metric(ours, "peak_rss_kib"))

    health = (ours or base or {}).get("health") or {}
    print()
    print(f"API benchmark: N={meta.get('n_reviews'):,} synthetic reviews, "
          f"{meta.get('products'):,} products (run {health.get('run_id', '?')}), "
          f"GET /reviews/<random product>/top?limit={meta.get('limit')}")
    print(f"wrk: {meta.get('threads')} threads x {meta.get('connections')} connections for "
          f"{meta.get('duration_s')} s, then 1 thread x 1 connection for {meta.get('single_duration_s')} s, "
          f"after a {meta.get('warmup_s')} s warm-up; {meta.get('cores')} cores shared by server and wrk")
    print(f"1-min load average before/after: {meta.get('loadavg_before')}/{meta.get('loadavg_after')}"
          " (anything well above 0 means other work skewed the figures)")
    print()
    w = 34
    print(f"{'':{w}} {'reviews serve':>15} {'FastAPI+pandas':>15}")
    for title, _, fn, digits, _better in rows:
        a = fn(ours) if ours else None
        b = fn(base) if base else None
        print(f"{title:{w}} {_fmt(a, digits=digits):>15} {_fmt(b, digits=digits):>15}")
    print()
    if ratios:
        print("ratios (higher = better for reviews serve):")
        for k, v in ratios.items():
            print(f"  {k:44} {_fmt(v, 'x', 1)}")
        print()
    if ours:
        p99_single = _ms(metric(ours, "wrk", "single", "latency_us", "p99"))
        p99_loaded = _ms(metric(ours, "wrk", "loaded", "latency_us", "p99"))
        cold = _ms_to_s(metric(ours, "cold_start_ms"))
        goals = {
            "p99_under_1ms_single_connection": None if p99_single is None else p99_single < 1.0,
            "p99_under_1ms_loaded": None if p99_loaded is None else p99_loaded < 1.0,
            "cold_start_under_1s": None if cold is None else cold < 1.0,
            "first_answer_under_150ms": None if metric(ours, "first_answer_ms") is None
            else metric(ours, "first_answer_ms") < 150,
        }
        print("goals (issue 3): " + ", ".join(f"{k}={'met' if v else 'NOT met' if v is not None else '-'}"
                                             for k, v in goals.items()))
    else:
        goals = None
    doc = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "setup": meta,
        "ours": ours,
        "baseline": base,
        "ratios": ratios or None,
        "goals": goals,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"written {out}")


def _ms_to_s(v):
    return None if v is None else v / 1000.0


def _kib_to_mib(v):
    return None if v is None else v / 1024.0


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "products":
        cmd_products(*args)
    elif cmd == "free-port":
        cmd_free_port()
    elif cmd == "check":
        cmd_check(*args)
    elif cmd == "side":
        cmd_side(args[0], args[1:])
    elif cmd == "report":
        cmd_report(args[0], args[1:])
    else:
        sys.exit(f"unknown subcommand {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()
