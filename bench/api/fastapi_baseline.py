"""The "original" way of serving the top reviews: FastAPI + uvicorn over a pandas DataFrame.

This is the baseline that scripts/bench-api.sh measures `reviews serve` against. It mirrors how
the original Python project served the curated data, on purpose without the improvements the
Rust API makes:

- at startup, read the curated Parquet parts listed in curated/_latest.json with
  `pd.read_parquet` into one DataFrame (all columns, as the original did), once;
- per request, `df[df.product_id == pid]`, sort by relevance descending, `head(limit)`, and
  return the same JSON shape as `GET /reviews/{product_id}/top` of the Rust API (topics carry
  id, name (from the manifest's topic list) and score).

It is not sabotaged either: the data is loaded once (not per request), a single uvicorn worker
with uvloop/httptools (uvicorn[standard]) serves it, access logging is off, and the handler is
`async def` so it runs on the event loop without a thread-pool hop (pandas holds the GIL anyway).
No index by product is built: the original had none, and that is what is being compared.

Usage: python fastapi_baseline.py --lake DIR --port P [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time

import pandas as pd
import uvicorn
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

STATE: dict = {}

app = FastAPI(title="reviews (FastAPI + pandas baseline)")


def load(lake: str) -> None:
    t0 = time.perf_counter()
    manifest_path = os.path.join(lake, "curated", "_latest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    keys = manifest["keys"]
    if not keys:
        raise SystemExit(f"{manifest_path}: no curated parts listed")
    frames = [pd.read_parquet(os.path.join(lake, k)) for k in keys]
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    STATE.update(
        df=df,
        run_id=manifest.get("run_id"),
        rows=int(len(df)),
        products=int(df["product_id"].nunique()),
        load_seconds=time.perf_counter() - t0,
        loaded_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        topic_names={t["id"]: t.get("name") for t in manifest.get("topics") or []},
    )
    print(
        f"baseline: loaded {STATE['rows']} rows, {STATE['products']} products of run "
        f"{STATE['run_id']} in {STATE['load_seconds']:.2f}s",
        file=sys.stderr,
        flush=True,
    )


def _num(v):
    """A plain Python number (or None for NaN/NA) from a pandas/numpy scalar."""
    if v is None or v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _bool(v):
    if v is None or v is pd.NA:
        return None
    return bool(v)


def _date(v):
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, (dt.date, dt.datetime, pd.Timestamp)):
        return v.isoformat()[:10]
    return str(v)


def _topics(v):
    if v is None:
        return []
    names = STATE["topic_names"]
    return [{"id": t["id"], "name": names.get(t["id"]), "score": _num(t["score"])} for t in v]


@app.get("/health")
async def health():
    if "df" not in STATE:
        return JSONResponse({"status": "unavailable", "reason": "no dataset loaded"}, status_code=503)
    return {
        "status": "ok",
        "run_id": STATE["run_id"],
        "rows": STATE["rows"],
        "products": STATE["products"],
        "loaded_at": STATE["loaded_at"],
        "load_seconds": round(STATE["load_seconds"], 3),
    }


@app.get("/reviews/{product_id}/top")
async def top(product_id: str, limit: int = Query(5, ge=1, le=50)):
    df = STATE["df"]
    sub = df[df.product_id == product_id]
    if sub.empty:
        return JSONResponse({"error": f"unknown product {product_id}"}, status_code=404)
    sub = sub.sort_values("relevance", ascending=False).head(limit)
    reviews = [
        {
            "review_id": r["review_id"],
            "rating": _num(r["rating"]),
            "title": r["title"],
            "text": r["text"],
            "topics": _topics(r["topics"]),
            "relevance": _num(r["relevance"]),
            "helpful_votes": _num(r["helpful_votes"]),
            "total_votes": _num(r["total_votes"]),
            "verified_purchase": _bool(r["verified_purchase"]),
            "review_date": _date(r["review_date"]),
            "language": r["language"],
        }
        for r in sub.to_dict(orient="records")
    ]
    return {"product_id": product_id, "run_id": STATE["run_id"], "topic": None, "reviews": reviews}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True, help="lake folder holding curated/_latest.json")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    load(args.lake)  # before the server listens: /health answers only once the data is in
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, workers=1)


if __name__ == "__main__":
    main()
