#!/usr/bin/env python3
"""Look for strings in every version of every object of a bucket and every document of a
MongoDB archive: the proof the e2e erasure scenario checks. Parquet objects are decoded (their
pages are compressed, so a byte search would find nothing); every other object is searched as
text. Prints one JSON object: {"objects": N, "documents": N, "holding": ["key@version", ...,
"mongo:db.collection/_id", ...]}.

  erasure_scan.py --endpoint URL --bucket NAME [--mongo-uri URI [--mongo-db DB] [--mongo-collection C]] [--skip-key SUFFIX] NEEDLE...

Run with the test venv (scripts/test-env.sh: boto3, pyarrow and pymongo).
"""
import argparse
import io
import json
import sys

import boto3
import pyarrow.parquet as pq


def parquet_cells(body):
    table = pq.read_table(io.BytesIO(body))
    for column in table.columns:
        for value in column.to_pylist():
            if value is not None:
                yield str(value)


def holds(key, body, needles):
    if key.endswith(".parquet"):
        return any(n in cell for cell in parquet_cells(body) for n in needles)
    text = body.decode("utf-8", errors="replace")
    return any(n in text for n in needles)


def scan_bucket(endpoint, bucket, needles, skip):
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    objects, holding = 0, []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            key, version = v["Key"], v["VersionId"]
            if any(key.endswith(s) for s in skip):
                continue
            body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
            objects += 1
            if holds(key, body, needles):
                holding.append(f"{key}@{version}")
    return objects, holding


def scan_mongo(uri, db_name, collection, needles):
    from bson import json_util
    from pymongo import MongoClient

    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    documents, holding = 0, []
    db = client[db_name]
    for coll in [collection] if collection else db.list_collection_names():
        for doc in db[coll].find():
            documents += 1
            text = json_util.dumps(doc)
            if any(n in text for n in needles):
                holding.append(f"mongo:{db_name}.{coll}/{doc.get('_id')}")
    return documents, holding


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--mongo-uri")
    ap.add_argument("--mongo-db", default="reviews_archive")
    ap.add_argument("--mongo-collection", help="the one collection to search (default: every one of the database)")
    ap.add_argument("--skip-key", action="append", default=[],
                    help="key suffix not to search (the erased list holds the ids by design)")
    ap.add_argument("needles", nargs="+")
    args = ap.parse_args()
    objects, holding = scan_bucket(args.endpoint, args.bucket, args.needles, args.skip_key)
    documents = 0
    if args.mongo_uri:
        documents, in_mongo = scan_mongo(args.mongo_uri, args.mongo_db, args.mongo_collection, args.needles)
        holding += in_mongo
    json.dump({"objects": objects, "documents": documents, "holding": holding}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
