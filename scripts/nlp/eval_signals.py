#!/usr/bin/env python3
"""How well do the model signals rank reviews against real helpful votes?

Usage: eval_signals.py REVIEWS.csv SIGNALS.csv
  REVIEWS.csv  the Amazon sample layout (review_id, helpful_votes, review_date, product_id ...)
  SIGNALS.csv  written by `cargo run -p reviews-nlp --example signals_csv -- REVIEWS.csv SIGNALS.csv`

Prints, per ranking (token count, informativeness, 1 - off_topic): the age-controlled pairwise
accuracy (pairs of reviews of one product posted within 90 days, the winner with >= 2 votes and
more than the other; ties count half), the same on pairs of similar length (token ratio < e^0.4),
and NDCG@5 with gain log2(1 + votes) over products with >= 5 reviews and one voted review.
This only checks the NLP signals; `reviews eval` judges the full relevance score.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import sys
from collections import defaultdict


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    signals = {r["review_id"]: r for r in csv.DictReader(open(sys.argv[2], newline=""))}
    reviews = []
    for r in csv.DictReader(open(sys.argv[1], newline="")):
        s = signals[r["review_id"]]
        reviews.append(
            {
                "product": r["product_id"],
                "votes": int(r["helpful_votes"]),
                "date": dt.date.fromisoformat(r["review_date"]),
                "tokens": float(s["tokens"]),
                "informativeness": float(s["informativeness"]),
                "on_topic": 1.0 - float(s["off_topic"]),
            }
        )
    by_product = defaultdict(list)
    for r in reviews:
        by_product[r["product"]].append(r)

    pairs = []
    for rs in by_product.values():
        for a, b in itertools.combinations(rs, 2):
            if abs((a["date"] - b["date"]).days) > 90:
                continue
            if a["votes"] < b["votes"]:
                a, b = b, a
            if a["votes"] >= 2 and a["votes"] > b["votes"]:
                pairs.append((a, b))
    similar = [(a, b) for a, b in pairs if abs(math.log(a["tokens"] / b["tokens"])) < 0.4]

    def accuracy(key: str, ps: list) -> float:
        won = sum(1.0 if a[key] > b[key] else 0.5 if a[key] == b[key] else 0.0 for a, b in ps)
        return won / len(ps)

    def ndcg5(key: str) -> float:
        gain = lambda r: math.log2(1 + r["votes"])  # noqa: E731
        scores = []
        for rs in by_product.values():
            if len(rs) < 5 or max(r["votes"] for r in rs) < 1:
                continue
            ranked = sorted(rs, key=lambda r: r[key], reverse=True)[:5]
            ideal = sorted(rs, key=gain, reverse=True)[:5]
            dcg = sum(gain(r) / math.log2(i + 2) for i, r in enumerate(ranked))
            scores.append(dcg / sum(gain(r) / math.log2(i + 2) for i, r in enumerate(ideal)))
        return sum(scores) / len(scores)

    print(f"{len(pairs)} age-controlled pairs, {len(similar)} of similar length")
    print(f"{'ranking':18} {'pairwise':>9} {'similar-length':>15} {'NDCG@5':>7}")
    for key in ("tokens", "informativeness", "on_topic"):
        print(f"{key:18} {accuracy(key, pairs):9.3f} {accuracy(key, similar):15.3f} {ndcg5(key):7.3f}")


if __name__ == "__main__":
    main()
