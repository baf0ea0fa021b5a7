#!/usr/bin/env python3
"""Lambda API bridge: LocalStack (or moto) -> `cargo lambda watch`, with AWS's error shape.

Why: without Docker, LocalStack cannot run Lambda functions itself. Started with
DISTRIBUTED_MODE=1 and AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:<this port>, its internal boto
clients (Step Functions tasks, EventBridge Lambda targets) send the Lambda API calls here instead.
`cargo lambda watch` serves the Invoke API too, but answers a function error with HTTP 500, which
botocore turns into a Lambda.ServiceException (retried, then caught as a service failure): the
function's own errorType (RetryableError / FatalError) would never reach Retry/Catch. AWS answers
200 + `X-Amz-Function-Error: Unhandled` with the error document as the payload; this bridge does
that translation.

Routes (everything else: 404 ResourceNotFoundException, logged):
  POST /2015-03-31/functions/{name|arn}/invocations   Invoke (RequestResponse, Event, DryRun)
  GET  /2015-03-31/functions/{name|arn}               GetFunction (minimal, State=Active)
  GET  /2015-03-31/functions/{name|arn}/configuration GetFunctionConfiguration
  GET  /2015-03-31/functions/                          ListFunctions (the --functions list)
  GET  /_bridge/health                                 {"status": "ok", "upstream": ...}
  GET  /_bridge/calls                                  the invocations seen (name, status, ms)

Mapping of the upstream (cargo lambda watch) answer:
  200                                   -> 200 (payload as is)
  200 whose body is only {errorType, errorMessage[, stackTrace]}
                                        -> 200 + X-Amz-Function-Error: Unhandled
                                           (cargo-lambda answers an init error with 200)
  500 with a JSON body holding errorType -> 200 + X-Amz-Function-Error: Unhandled (function error)
  404 (no such binary)                  -> 404 ResourceNotFoundException
  other status / unparseable 500        -> 500 ServiceException      (Lambda.ServiceException)
  connection refused / timeout          -> 500 ServiceException      (Lambda.ServiceException)

Loopback only: the listen and upstream addresses must be 127.0.0.0/8 or ::1.

  python3 localstack/bridge.py --port 9001 --upstream http://127.0.0.1:9000 \
      --functions reviews-extract,reviews-archive,...
"""
import argparse
import http.client
import ipaddress
import json
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "000000000000"
REGION = "us-east-1"
CALLS = []
CALLS_LOCK = threading.Lock()
MAX_CALLS_KEPT = 1000


def log(msg, **fields):
    fields["msg"] = msg
    fields["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(json.dumps(fields), file=sys.stderr, flush=True)


def require_loopback(host):
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost":
            return
        raise SystemExit(f"bridge: {host!r} is not a loopback address; refusing")
    if not ip.is_loopback:
        raise SystemExit(f"bridge: {host!r} is not a loopback address; refusing")


def function_name(raw):
    """Name from a name, a partial ARN (123:function:name) or a full ARN, dropping a qualifier."""
    name = urllib.parse.unquote(raw)
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    return name.split(":", 1)[0]


def function_config(name):
    return {
        "FunctionName": name,
        "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Version": "$LATEST",
        "Description": "served by cargo lambda watch through localstack/bridge.py",
    }


def is_error_document(body):
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
        return doc
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "reviews-lambda-bridge/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet default access log; we log JSON ourselves
        pass

    # --- helpers -------------------------------------------------------------------------------
    def send(self, status, body=b"", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def aws_error(self, status, code, message):
        self.send(status, {"Type": "User" if status < 500 else "Service",
                           "message": message, "Message": message},
                  {"X-Amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.awslambda/"})

    def parts(self):
        path = urllib.parse.urlsplit(self.path).path
        return [p for p in path.split("/") if p]

    # --- routes --------------------------------------------------------------------------------
    def do_GET(self):
        p = self.parts()
        if p == ["_bridge", "health"]:
            return self.send(200, {"status": "ok", "upstream": self.server.upstream})
        if p == ["_bridge", "calls"]:
            with CALLS_LOCK:
                return self.send(200, list(CALLS))
        if len(p) >= 2 and p[0] == "2015-03-31" and p[1] == "functions":
            if len(p) == 2:
                return self.send(200, {"Functions": [function_config(n) for n in self.server.functions]})
            name = function_name(p[2])
            if self.server.functions and name not in self.server.functions:
                return self.aws_error(404, "ResourceNotFoundException", f"Function not found: {name}")
            if len(p) == 3:
                return self.send(200, {"Configuration": function_config(name),
                                       "Code": {"RepositoryType": "S3", "Location": ""}})
            if len(p) == 4 and p[3] == "configuration":
                return self.send(200, function_config(name))
        log("unsupported Lambda API call", method="GET", path=self.path)
        return self.aws_error(404, "ResourceNotFoundException", f"bridge: unsupported call GET {self.path}")

    def do_POST(self):
        p = self.parts()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(p) == 4 and p[0] == "2015-03-31" and p[1] == "functions" and p[3] == "invocations":
            return self.invoke(function_name(p[2]), body)
        if p == ["_bridge", "calls", "reset"]:
            with CALLS_LOCK:
                CALLS.clear()
            return self.send(200, {"reset": True})
        log("unsupported Lambda API call", method="POST", path=self.path)
        return self.aws_error(404, "ResourceNotFoundException", f"bridge: unsupported call POST {self.path}")

    def invoke(self, name, payload):
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            return self.send(204)
        if invocation_type == "Event":
            threading.Thread(target=self.forward, args=(name, payload), daemon=True).start()
            return self.send(202)
        status, headers, body = self.forward(name, payload)
        return self.send(status, body, headers)

    def forward(self, name, payload):
        """Calls cargo lambda watch; returns (status, headers, body) in AWS's shape."""
        started = time.monotonic()
        up = urllib.parse.urlsplit(self.server.upstream)
        outcome = "ok"
        try:
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=self.server.timeout_s)
            conn.request("POST", f"/2015-03-31/functions/{urllib.parse.quote(name)}/invocations",
                         body=payload, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            up_status, up_body = resp.status, resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            outcome = "upstream-unreachable"
            result = (500, {"X-Amzn-ErrorType": "ServiceException"},
                      json.dumps({"Type": "Service",
                                  "message": f"bridge: cargo lambda watch unreachable at {self.server.upstream}: {e}"}).encode())
            self.record(name, outcome, result[0], started)
            return result
        executed = {"X-Amz-Executed-Version": "$LATEST"}
        if up_status == 200:
            doc = is_error_document(up_body)
            if doc is not None and set(doc) <= {"errorType", "errorMessage", "stackTrace"}:
                outcome = f"function-error(init):{doc['errorType']}"
                result = (200, dict(executed, **{"X-Amz-Function-Error": "Unhandled"}), up_body)
            else:
                result = (200, executed, up_body)
        elif up_status == 500 and is_error_document(up_body) is not None:
            outcome = f"function-error:{is_error_document(up_body)['errorType']}"
            result = (200, dict(executed, **{"X-Amz-Function-Error": "Unhandled"}), up_body)
        elif up_status == 404:
            outcome = "no-such-function"
            result = (404, {"X-Amzn-ErrorType": "ResourceNotFoundException"},
                      json.dumps({"Type": "User", "message": f"Function not found: {name} "
                                  f"(cargo lambda watch: {up_body[:300].decode(errors='replace')})"}).encode())
        else:
            outcome = f"upstream-status-{up_status}"
            result = (500, {"X-Amzn-ErrorType": "ServiceException"},
                      json.dumps({"Type": "Service", "message": f"bridge: cargo lambda watch answered {up_status}: "
                                  f"{up_body[:300].decode(errors='replace')}"}).encode())
        self.record(name, outcome, result[0], started)
        return result

    def record(self, name, outcome, status, started):
        ms = round((time.monotonic() - started) * 1000, 1)
        entry = {"function": name, "outcome": outcome, "status": status, "ms": ms, "at": time.time()}
        with CALLS_LOCK:
            CALLS.append(entry)
            del CALLS[:-MAX_CALLS_KEPT]
        log("invoke", **entry)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--upstream", default="http://127.0.0.1:9000", help="cargo lambda watch address")
    ap.add_argument("--functions", default="", help="comma-separated names for GetFunction/ListFunctions")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds to wait for one invocation (the first one compiles the function)")
    args = ap.parse_args()
    require_loopback(args.host)
    require_loopback(urllib.parse.urlsplit(args.upstream).hostname or "")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.upstream = args.upstream
    server.functions = [f for f in args.functions.split(",") if f]
    server.timeout_s = args.timeout
    log("bridge listening", listen=f"{args.host}:{args.port}", upstream=args.upstream)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
