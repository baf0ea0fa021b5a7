"""Read a run's Parquet files with pyarrow, an independent reader, and print what it sees as JSON.

Usage: read_lake.py LAKE_DIR RUN_ID
"""
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq


def describe(path: Path) -> dict:
    pf = pq.ParquetFile(path)
    md = pf.metadata
    rg0 = md.row_group(0) if md.num_row_groups else None
    col0 = rg0.column(0) if rg0 is not None else None
    table = pf.read()
    return {
        "rows": md.num_rows,
        "row_groups": md.num_row_groups,
        "columns": table.column_names,
        "compression": col0.compression if col0 is not None else None,
        "has_statistics": bool(col0 is not None and col0.is_stats_set),
        "has_column_index": bool(col0 is not None and col0.has_column_index),
        "has_offset_index": bool(col0 is not None and col0.has_offset_index),
        "schema_id": (md.metadata or {}).get(b"reviews.schema", b"").decode(),
        "table": table,
    }


def main() -> None:
    lake, run = Path(sys.argv[1]), sys.argv[2]
    cleaned = sorted((lake / "cleaned" / f"run={run}").glob("*.parquet"))
    curated = sorted((lake / "curated" / f"run={run}").glob("*.parquet"))
    out = {"cleaned": [], "curated": []}
    keys = []
    # Each curated file is one product bucket, sorted on its own (product asc, relevance desc).
    per_file_sorted = True
    for p in cleaned:
        d = describe(p)
        d.pop("table")
        out["cleaned"].append(d)
    for p in curated:
        d = describe(p)
        t = d.pop("table")
        ids = t.column("product_id").to_pylist()
        rel = t.column("relevance").to_pylist()
        pairs = list(zip(ids, rel))
        per_file_sorted &= all(
            (a[0] < b[0]) or (a[0] == b[0] and a[1] >= b[1]) for a, b in zip(pairs, pairs[1:])
        )
        keys.extend(pairs)
        if not out["curated"]:
            first = t.slice(0, 1).to_pylist()[0]
            d["first_row"] = {k: first[k] for k in ("product_id", "review_id", "rating", "relevance", "text")}
            d["first_row"]["topics"] = first["topics"]
            d["first_row"]["reasons"] = first.get("reasons")
            d["first_row"]["sig_learned"] = first.get("sig_learned")
        out["curated"].append(d)
    out["curated_sorted"] = per_file_sorted
    out["curated_rows"] = len(keys)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
