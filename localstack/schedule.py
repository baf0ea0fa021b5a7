"""Used by e2e.py: make an EventBridge rule on rate(1 minute) start an
execution of the state machine by itself, and return it.

LocalStack 2026.3.0 creates a rule's timer in PutTargets (with the rule's state at that moment)
and checks timers about every 60 s; a later PutRule/DisableRule does not touch the timer,
RemoveTargets silences it. A target whose Input is {} is dropped ("No event to send"), hence
{"trigger": "schedule"}. A rule of its own, so the deployed one is left alone.
"""
import time


def rule_starts_execution(sfn, events, sm_arn, rule="reviews-test-schedule", timeout=150):
    """Returns (the new execution or None, seconds from PutTargets until it was seen)."""
    before = {e["name"] for e in sfn.list_executions(stateMachineArn=sm_arn, maxResults=1000)["executions"]}
    t0 = time.monotonic()
    events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(Rule=rule, Targets=[{"Id": "state-machine", "Arn": sm_arn, "Input": '{"trigger": "schedule"}',
                                            "RoleArn": "arn:aws:iam::000000000000:role/reviews-scheduler"}])
    found = None
    try:
        while time.monotonic() - t0 < timeout and not found:
            for e in sfn.list_executions(stateMachineArn=sm_arn, maxResults=1000)["executions"]:
                if e["name"] not in before:
                    found = e
            time.sleep(1)
    finally:
        events.remove_targets(Rule=rule, Ids=["state-machine"])
        events.delete_rule(Name=rule)
    return found, round(time.monotonic() - t0, 1)
