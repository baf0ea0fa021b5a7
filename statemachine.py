#!/usr/bin/env python3
"""Generator for statemachine.asl.json (kept so the repetitive Retry/Catch blocks stay uniform).

The committed statemachine.asl.json is the source of truth that Terraform and the LocalStack
scripts read; this script only regenerates it:  cargo xtask contracts  (or
python3 statemachine.py > statemachine.asl.json). scripts/infra-check.sh verifies that the
committed file equals this generator's output, so a hand edit of one without the other is caught;
functions/tests/tests/payload_schemas.rs checks every payload it passes and reads against the
functions' schemas (functions/schemas/, generated from the Rust types).
"""
import json

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]

# Lambda's own limit is 900 s; a task that hangs longer is a States.Timeout (caught as States.ALL).
TASK_TIMEOUT_SECONDS = 900


def retry(retryable_attempts=5, retryable_interval=2):
    return [
        {
            "Comment": "Lambda service hiccups (throttling, 5xx): retry quickly.",
            "ErrorEquals": LAMBDA_SERVICE_ERRORS,
            "IntervalSeconds": 1,
            "BackoffRate": 2.0,
            "MaxAttempts": 4,
            "MaxDelaySeconds": 20,
            "JitterStrategy": "FULL",
        },
        {
            "Comment": "Transient failure reported by our code (database or service down).",
            "ErrorEquals": ["RetryableError"],
            "IntervalSeconds": retryable_interval,
            "BackoffRate": 2.0,
            "MaxAttempts": retryable_attempts,
            "MaxDelaySeconds": 60,
            "JitterStrategy": "FULL",
        },
    ]


def catch(next_state):
    return [
        {"ErrorEquals": ["FatalError"], "ResultPath": "$.error", "Next": next_state},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": next_state},
    ]


def invoke(arn_placeholder, payload, result_selector, result_path, next_state=None, catch_to=None,
           comment=None, retryable_attempts=5, retryable_interval=2):
    state = {"Type": "Task"}
    if comment:
        state["Comment"] = comment
    state.update({
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${%s}" % arn_placeholder, "Payload": payload},
        "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
        "ResultSelector": result_selector,
        "ResultPath": result_path,
        "Retry": retry(retryable_attempts, retryable_interval),
        "Catch": catch(catch_to),
    })
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


def record_failure(step, next_state, comment=None):
    """Pass state of the failure path: keeps the error (name + cause, prefixed by the step)."""
    state = {"Type": "Pass"}
    if comment:
        state["Comment"] = comment
    state.update({
        "Parameters": {
            "step": step,
            "error.$": "$.error.Error",
            "cause.$": "States.Format('%s failed: {}', $.error.Cause)" % step,
        },
        "ResultPath": "$.failure",
        "Next": next_state,
    })
    return state


def fail(comment):
    return {
        "Type": "Fail",
        "Comment": comment,
        "ErrorPath": "$.failure.error",
        "CausePath": "$.failure.cause",
    }


TRANSFORM_COUNTS = {
    "rows_in.$": "$.transform.rows_in",
    "cleaned.$": "$.transform.cleaned",
    "rejected.$": "$.transform.rejected",
    "rejected_by_reason.$": "$.transform.rejected_by_reason",
    "rejects_key.$": "$.transform.rejects_key",
    "buckets.$": "$.transform.buckets",
    "full_pass.$": "$.transform.full_pass",
}

def distributed_map(comment, items, item_selector, child, function_arn, payload, child_comment,
                    stage, done_key, what, count_key, result_path, catch_to, next_state):
    """A Distributed Map whose child execution invokes one function and returns only `true`
    (its `done_key`); the Map keeps only the count and distinct values of those results."""
    state = {"Type": "Map", "Comment": comment}
    state.update(items)
    state.update({
        "ItemSelector": item_selector,
        "MaxConcurrencyPath": "$.max_concurrency",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": child,
            "States": {
                child: dict(
                    invoke(function_arn, payload, {done_key: True}, "$",
                           catch_to=f"{child}Failed", comment=child_comment),
                    OutputPath=f"$.{done_key}",
                ),
                f"{child}Failed": record_failure(stage, f"{child}FailedStop"),
                f"{child}FailedStop": fail(
                    f"Fails this {what}'s child execution, hence the Map, with the recorded error."),
            },
        },
        "ResultSelector": {
            count_key: "States.ArrayLength($)",
            "outcomes.$": "States.ArrayUnique($)",
        },
        "ResultPath": result_path,
        "Catch": catch(catch_to),
        "Next": next_state,
    })
    return state


merge_map = distributed_map(
    comment=(
        "Steps 5+6 (merge + score + load curated, fused): one Lambda per product bucket the run "
        "changed. DISTRIBUTED: each bucket is a child workflow execution (up to 4096 buckets, "
        "beyond the inline Map's limits); the items are read from the lake (transform's "
        "plan-items.json) by the ItemReader, not carried in the state. Each child returns only "
        "`true`, and the Map keeps only their count and distinct values: publish reads the "
        "per-bucket records from the lake."
    ),
    items={"ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "${LakeBucket}", "Key.$": "$.transform.items_key"},
    }},
    item_selector={
        "run_id.$": "$$.Map.Item.Value.run_id",
        "bucket.$": "$$.Map.Item.Value.bucket",
    },
    child="MergeBucket",
    function_arn="ScoreFunctionArn",
    payload={"run_id.$": "$.run_id", "bucket.$": "$.bucket"},
    child_comment="Merge the bucket's carried rows with the run's changes, score, write cleaned/ + curated/.",
    stage="score",
    done_key="merged",
    what="bucket",
    count_key="buckets_merged.$",
    result_path="$.merge",
    catch_to="ScoreFailed",
    next_state="EveryBucketMerged",
)

route_map = distributed_map(
    comment=(
        "Step 3, routing (transform, one Lambda per raw part): clean the part and route its valid "
        "rows to product buckets (cleaned/run=<id>/changes/), its rejected ones to rejects/. "
        "DISTRIBUTED: each part is a child workflow execution, so neither one Lambda's time nor "
        "its memory bounds the day's rows. Each child returns only `true`; the plan reads the "
        "parts' route records from the lake."
    ),
    items={"ItemsPath": "$.raw_keys"},
    item_selector={
        "run_id.$": "$.run_id",
        "part.$": "$$.Map.Item.Index",
        "raw_key.$": "$$.Map.Item.Value",
        "buckets.$": "$.buckets",
    },
    child="RoutePart",
    function_arn="TransformFunctionArn",
    payload={
        "run_id.$": "$.run_id",
        "part.$": "$.part",
        "raw_key.$": "$.raw_key",
        "buckets.$": "$.buckets",
    },
    child_comment="Clean one raw part, write its change files per bucket, its rejects and its route record.",
    stage="transform",
    done_key="routed",
    what="part",
    count_key="parts_routed.$",
    result_path="$.route",
    catch_to="TransformFailed",
    next_state="EveryPartRouted",
)

main_branch = {
    "StartAt": "CountParts",
    "States": {
        "CountParts": {
            "Type": "Pass",
            "Comment": "How many raw parts the route Map must route (checked after it).",
            "Parameters": {"raw_parts.$": "States.ArrayLength($.raw_keys)"},
            "ResultPath": "$.parts",
            "Next": "RouteParts",
        },
        "RouteParts": route_map,
        "EveryPartRouted": {
            "Type": "Choice",
            "Comment": (
                "Every raw part routed: as many child results as parts, all `true` (the plan "
                "also refuses a part without a route record)."
            ),
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.route.parts_routed", "NumericEqualsPath": "$.parts.raw_parts"},
                        {"Variable": "$.route.outcomes[0]", "IsBoolean": True},
                        {"Variable": "$.route.outcomes[0]", "BooleanEquals": True},
                        {"Not": {"Variable": "$.route.outcomes[1]", "IsPresent": True}},
                    ],
                    "Next": "Transform",
                }
            ],
            "Default": "PartsUnrouted",
        },
        "PartsUnrouted": {
            "Type": "Pass",
            "Parameters": {
                "step": "transform",
                "error": "PartsUnrouted",
                "cause.$": (
                    "States.Format('transform failed: {} raw parts, {} child results, not all of "
                    "them a successful routing (see the map run)', $.parts.raw_parts, "
                    "$.route.parts_routed)"
                ),
            },
            "ResultPath": "$.failure",
            "Next": "MainBranchFailed",
        },
        "Transform": invoke(
            "TransformFunctionArn",
            {
                "run_id.$": "$.run_id",
                "raw_keys.$": "$.raw_keys",
                "merge_previous.$": "$.incremental",
                "deletions_key.$": "$.deletions_key",
                "buckets.$": "$.buckets",
                "routed": True,
            },
            {
                "run_id.$": "$.Payload.run_id",
                "rows_in.$": "$.Payload.rows_in",
                "cleaned.$": "$.Payload.cleaned",
                "rejected.$": "$.Payload.rejected",
                "rejected_by_reason.$": "$.Payload.rejected_by_reason",
                "rejects_key.$": "$.Payload.rejects_key",
                "buckets.$": "$.Payload.buckets",
                "changed.$": "$.Payload.changed",
                "items_key.$": "$.Payload.items_key",
                "full_pass.$": "$.Payload.full_pass",
            },
            "$.transform",
            next_state="CountRows",
            catch_to="TransformFailed",
            comment=(
                "Steps 3+4 (transform + load cleaned), the plan: from the parts' route records, "
                "decide the buckets to rewrite and write their tasks (a count here: the list "
                "itself is read from the lake by the bucket Map)."
            ),
        ),
        "CountRows": {
            "Type": "Pass",
            "Comment": "Nothing is lost: cleaned + rejected must equal the rows extracted (one intrinsic, as emulators evaluate them).",
            "Parameters": {
                "cleaned_plus_rejected.$": "States.MathAdd($.transform.cleaned, $.transform.rejected)",
            },
            "ResultPath": "$.accounted",
            "Next": "RowsAccountedFor",
        },
        "RowsAccountedFor": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.transform.rows_in", "NumericEqualsPath": "$.rows_extracted"},
                        {
                            "Variable": "$.accounted.cleaned_plus_rejected",
                            "NumericEqualsPath": "$.rows_extracted",
                        },
                    ],
                    "Next": "AnythingToMerge",
                }
            ],
            "Default": "RowsUnaccounted",
        },
        "RowsUnaccounted": {
            "Type": "Pass",
            "Parameters": {
                "step": "transform",
                "error": "RowsUnaccounted",
                "cause.$": (
                    "States.Format('transform failed: extracted {} rows, transform read {}, "
                    "cleaned {} + rejected {}', $.rows_extracted, $.transform.rows_in, "
                    "$.transform.cleaned, $.transform.rejected)"
                ),
            },
            "ResultPath": "$.failure",
            "Next": "MainBranchFailed",
        },
        "AnythingToMerge": {
            "Type": "Choice",
            "Comment": "No bucket changed (nothing new, updated or deleted): nothing to publish, the live dataset stays.",
            "Choices": [
                {"Variable": "$.transform.changed", "NumericGreaterThan": 0, "Next": "MergeBuckets"}
            ],
            "Default": "ReleaseLeaseUnpublished",
        },
        "ReleaseLeaseUnpublished": {
            "Type": "Task",
            "Comment": "Nothing to publish: give the run lease back (best effort; it also expires).",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${PublishFunctionArn}",
                "Payload": {"release_lease.$": "$.run_id"},
            },
            "TimeoutSeconds": 60,
            "ResultPath": None,
            "Retry": retry(2, 1),
            "Catch": catch("NothingToPublish"),
            "Next": "NothingToPublish",
        },
        "MergeBuckets": merge_map,
        "EveryBucketMerged": {
            "Type": "Choice",
            "Comment": (
                "Every planned bucket merged: as many child results as buckets planned, all `true`. "
                "AWS fails the Map itself when a child fails (no failure is tolerated); this check "
                "also holds where an emulator lets a failed child through as a null result."
            ),
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.merge.buckets_merged", "NumericEqualsPath": "$.transform.changed"},
                        {"Variable": "$.merge.outcomes[0]", "IsBoolean": True},
                        {"Variable": "$.merge.outcomes[0]", "BooleanEquals": True},
                        {"Not": {"Variable": "$.merge.outcomes[1]", "IsPresent": True}},
                    ],
                    "Next": "Publish",
                }
            ],
            "Default": "BucketsUnmerged",
        },
        "BucketsUnmerged": {
            "Type": "Pass",
            "Parameters": {
                "step": "score",
                "error": "BucketsUnmerged",
                "cause.$": (
                    "States.Format('score failed: {} buckets planned, {} child results, not all "
                    "of them a successful merge (see the map run)', $.transform.changed, "
                    "$.merge.buckets_merged)"
                ),
            },
            "ResultPath": "$.failure",
            "Next": "MainBranchFailed",
        },
        "Publish": invoke(
            "PublishFunctionArn",
            {
                "run_id.$": "$.run_id",
                "watermark.$": "$.watermark",
            },
            {
                "status.$": "$.Payload.status",
                "run_id.$": "$.Payload.run_id",
                "manifest_key.$": "$.Payload.manifest_key",
                "rows.$": "$.Payload.rows",
                "checksum.$": "$.Payload.checksum",
                "sequence.$": "$.Payload.sequence",
                "changes.$": "$.Payload.changes",
                "buckets.$": "$.Payload.buckets",
                "buckets_written.$": "$.Payload.buckets_written",
                "encoded.$": "$.Payload.encoded",
                "reused.$": "$.Payload.reused",
            },
            "$.publish",
            next_state="CountChanges",
            catch_to="PublishFailed",
            comment=(
                "Step 7: validate every bucket of the run (its plan and per-bucket records in the "
                "lake), then commit it: one conditional write of curated/_latest.json (snapshot + "
                "watermark together); untouched buckets keep the earlier runs' files. A run built on "
                "a commit that is no longer live is refused (FatalError)."
            ),
        ),
        "CountChanges": {
            "Type": "Pass",
            "Comment": (
                "The snapshot is the base plus the changes: total + deleted + removed_by_reject + "
                "erased = previous + new, and the rows transform cleaned are the new and updated "
                "ones (each sum one intrinsic, as emulators evaluate them)."
            ),
            "Parameters": {
                "total_plus_deleted.$": "States.MathAdd($.publish.changes.total, $.publish.changes.deleted)",
                "removed.$": "States.MathAdd($.publish.changes.removed_by_reject, $.publish.changes.erased)",
                "previous_plus_new.$": "States.MathAdd($.publish.changes.previous, $.publish.changes.new)",
                "new_plus_updated.$": "States.MathAdd($.publish.changes.new, $.publish.changes.updated)",
            },
            "ResultPath": "$.accounted",
            "Next": "CountChangesTotal",
        },
        "CountChangesTotal": {
            "Type": "Pass",
            "Parameters": {
                "previous_plus_new.$": "$.accounted.previous_plus_new",
                "new_plus_updated.$": "$.accounted.new_plus_updated",
                "total_plus_removed.$": "States.MathAdd($.accounted.total_plus_deleted, $.accounted.removed)",
            },
            "ResultPath": "$.accounted",
            "Next": "SnapshotAccountedFor",
        },
        "SnapshotAccountedFor": {
            "Type": "Choice",
            "Comment": "The live snapshot holds exactly the rows the changes account for.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.publish.rows", "NumericEqualsPath": "$.publish.changes.total"},
                        {
                            "Variable": "$.accounted.total_plus_removed",
                            "NumericEqualsPath": "$.accounted.previous_plus_new",
                        },
                        {"Variable": "$.accounted.new_plus_updated", "NumericEqualsPath": "$.transform.cleaned"},
                    ],
                    "Next": "MainDone",
                }
            ],
            "Default": "SnapshotUnaccounted",
        },
        "SnapshotUnaccounted": {
            "Type": "Pass",
            "Parameters": {
                "step": "publish",
                "error": "RowsUnaccounted",
                "cause.$": (
                    "States.Format('publish failed: the snapshot holds {} rows, the changes total {}; "
                    "total + removed = {}, base + new = {}; new + updated = {}, transform cleaned {}', "
                    "$.publish.rows, $.publish.changes.total, $.accounted.total_plus_removed, "
                    "$.accounted.previous_plus_new, $.accounted.new_plus_updated, $.transform.cleaned)"
                ),
            },
            "ResultPath": "$.failure",
            "Next": "MainBranchFailed",
        },
        "MainDone": {
            "Type": "Pass",
            "Parameters": {
                "transform": TRANSFORM_COUNTS,
                "merge": {
                    "buckets.$": "$.transform.buckets",
                    "changed.$": "$.transform.changed",
                    "buckets_written.$": "$.publish.buckets_written",
                    "full_pass.$": "$.transform.full_pass",
                    "encoded.$": "$.publish.encoded",
                    "reused.$": "$.publish.reused",
                },
                "changes.$": "$.publish.changes",
                "publish.$": "$.publish",
            },
            "End": True,
        },
        "NothingToPublish": {
            "Type": "Pass",
            "Parameters": {
                "transform": TRANSFORM_COUNTS,
                "merge": {
                    "buckets.$": "$.transform.buckets",
                    "changed": 0,
                    "buckets_written": 0,
                    "full_pass.$": "$.transform.full_pass",
                },
                "changes": {},
                "publish": {
                    "status": "skipped",
                    "reason": "no bucket changed in this run; curated/_latest.json unchanged",
                },
            },
            "End": True,
        },
        "TransformFailed": record_failure("transform", "MainBranchFailed"),
        "ScoreFailed": record_failure(
            "score",
            "MainBranchFailed",
            comment=(
                "The Map's error: in AWS States.ExceedToleratedFailureThreshold (a child execution "
                "failed; its own history holds the bucket's error), inline the bucket's error itself."
            ),
        ),
        "PublishFailed": record_failure("publish", "MainBranchFailed"),
        "MainBranchFailed": fail("Fails the branch (and so the Parallel) with the recorded error."),
    },
}

archive_branch = {
    "StartAt": "Archive",
    "States": {
        "Archive": invoke(
            "ArchiveFunctionArn",
            {"run_id.$": "$.run_id"},
            {
                "status": "archived",
                "archived_runs.$": "$.Payload.archived_runs",
                "documents.$": "$.Payload.documents",
            },
            "$",
            next_state=None,
            catch_to="ArchiveDeferred",
            comment=(
                "Step 2: raw rows of this run (and the backlog of earlier runs) to MongoDB. The "
                "function retries MongoDB itself; any failure here defers the archive, never the run."
            ),
            retryable_attempts=2,
            retryable_interval=2,
        ),
        "ArchiveDeferred": {
            "Type": "Pass",
            "Comment": "MongoDB unavailable: the run goes on; the next run archives the backlog.",
            "Parameters": {
                "status": "deferred",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
            },
            "End": True,
        },
    },
}

definition = {
    "Comment": (
        "Reviews pipeline: extract -> [archive || Map(route each raw part to product buckets) -> "
        "transform plan -> Map(merge + score each changed bucket) -> publish]. Placeholders ${...} are filled by Terraform templatefile() and by "
        "scripts/infra/render_asl.py (LocalStack); see infra/README.md."
    ),
    "StartAt": "Configure",
    "TimeoutSeconds": 14400,
    "States": {
        "Configure": {
            "Type": "Pass",
            "Comment": "Deployment defaults; the execution input may override run_id and buckets.",
            "Parameters": {
                "defaults": {
                    "run_id": None,
                    "buckets.$": "States.StringToJson('${Buckets}')",
                    "max_concurrency.$": "States.StringToJson('${MapMaxConcurrency}')",
                },
                "input.$": "$",
            },
            "Next": "ApplyOverrides",
        },
        "ApplyOverrides": {
            "Type": "Pass",
            "Parameters": {"config.$": "States.JsonMerge($.defaults, $.input, false)"},
            "Next": "Extract",
        },
        "Extract": invoke(
            "ExtractFunctionArn",
            {
                "execution_name.$": "$$.Execution.Name",
                "start_time.$": "$$.Execution.StartTime",
                "run_id.$": "$.config.run_id",
            },
            {
                "status.$": "$.Payload.status",
                "lease_holder.$": "$.Payload.lease_holder",
                "run_id.$": "$.Payload.run_id",
                "raw_keys.$": "$.Payload.raw_keys",
                "rows.$": "$.Payload.rows",
                "watermark.$": "$.Payload.watermark",
                "incremental.$": "$.Payload.incremental",
                "deletions_key.$": "$.Payload.deletions_key",
                "deleted.$": "$.Payload.deleted",
            },
            "$.extract",
            next_state="LeaseFree",
            catch_to="ExtractFailed",
            comment=(
                "Step 1: take the run lease, then PostgreSQL -> raw/run=<run_id>/ (incremental "
                "from the watermark of the live commit). PostgreSQL down is a RetryableError, "
                "absorbed by the backoff below."
            ),
            retryable_attempts=6,
            retryable_interval=2,
        ),
        "LeaseFree": {
            "Type": "Choice",
            "Comment": "Another execution holds the run lease: end here, having changed nothing.",
            "Choices": [
                {"Variable": "$.extract.status", "StringEquals": "lease_held", "Next": "AnotherRunHoldsLease"}
            ],
            "Default": "Stages",
        },
        "AnotherRunHoldsLease": {
            "Type": "Succeed",
            "Comment": "Not a failure: the other run goes on; this one's rows are extracted by a later run.",
        },
        "Stages": {
            "Type": "Parallel",
            "Comment": "Archive beside the main branch; only the main branch can fail the run.",
            "Parameters": {
                "run_id.$": "$.extract.run_id",
                "raw_keys.$": "$.extract.raw_keys",
                "rows_extracted.$": "$.extract.rows",
                "incremental.$": "$.extract.incremental",
                "deletions_key.$": "$.extract.deletions_key",
                "watermark.$": "$.extract.watermark",
                "buckets.$": "$.config.buckets",
                "max_concurrency.$": "$.config.max_concurrency",
            },
            "Branches": [main_branch, archive_branch],
            "ResultSelector": {"main.$": "$[0]", "archive.$": "$[1]"},
            "ResultPath": "$.stages",
            "Catch": [
                {"ErrorEquals": ["FatalError"], "ResultPath": "$.error", "Next": "StagesFailed"},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "StagesFailed"},
            ],
            "Next": "Summary",
        },
        "Summary": {
            "Type": "Pass",
            "Comment": "The run's summary: each step's result and counts.",
            "Parameters": {
                "run_id.$": "$.extract.run_id",
                "rows": {
                    "extracted.$": "$.extract.rows",
                    "cleaned.$": "$.stages.main.transform.cleaned",
                    "rejected.$": "$.stages.main.transform.rejected",
                    "changes.$": "$.stages.main.changes",
                    "all_accounted_for": True,
                },
                "extract.$": "$.extract",
                "archive.$": "$.stages.archive",
                "transform.$": "$.stages.main.transform",
                "merge.$": "$.stages.main.merge",
                "publish.$": "$.stages.main.publish",
            },
            "End": True,
        },
        "ExtractFailed": record_failure("extract", "PipelineFailed"),
        "StagesFailed": {
            "Type": "Pass",
            "Comment": "The branch error and cause (cause already names the failed step).",
            "Parameters": {"step": "stages", "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
            "ResultPath": "$.failure",
            "Next": "ReleaseLease",
        },
        "ReleaseLease": {
            "Type": "Task",
            "Comment": (
                "Give the run lease back so the next execution need not wait for it to expire "
                "(nothing was committed: the watermark did not move, the rows are extracted "
                "again). Best effort: if this fails, the lease expires."
            ),
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${PublishFunctionArn}",
                "Payload": {"release_lease.$": "$.extract.run_id"},
            },
            "TimeoutSeconds": 60,
            "ResultPath": None,
            "Retry": retry(2, 1),
            "Catch": catch("PipelineFailed"),
            "Next": "PipelineFailed",
        },
        "PipelineFailed": fail("The run failed; error and cause are those recorded above."),
    },
}

if __name__ == "__main__":
    print(json.dumps(definition, indent=2, ensure_ascii=False))
