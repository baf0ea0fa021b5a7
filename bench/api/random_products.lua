-- wrk script: GET /reviews/<random product id>/top?limit=N, product ids drawn uniformly from a
-- list file (one id a line, written by scripts/bench-api.sh from the curated Parquet).
--
-- Environment:
--   BENCH_PRODUCTS  path of the product list (required)
--   BENCH_LIMIT     the limit parameter (default 5)
--   BENCH_LABEL     a label copied into the result line (default "run")
--
-- At the end it prints one line "BENCH_JSON {...}" with requests/s and latency percentiles in
-- microseconds, which the bench script parses (wrk's own --latency table is printed too).

local path = os.getenv("BENCH_PRODUCTS")
if not path or path == "" then
  error("BENCH_PRODUCTS is not set: it must name the product id list file")
end
local limit = os.getenv("BENCH_LIMIT") or "5"

local ids = {}
for line in io.lines(path) do
  if #line > 0 then
    ids[#ids + 1] = line
  end
end
if #ids == 0 then
  error("no product ids in " .. path)
end

-- Pre-build the request paths once per thread: the generator should cost as little as possible.
local paths = {}
for i = 1, #ids do
  paths[i] = "/reviews/" .. ids[i] .. "/top?limit=" .. limit
end

local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  -- discard the first few draws (weak seeding in some Lua versions)
  for _ = 1, 10 do math.random() end
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local out = string.format(
    '{"label":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"products":%d}',
    os.getenv("BENCH_LABEL") or "run",
    summary.requests, secs, summary.requests / secs,
    latency.mean, latency.stdev, latency.min,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, #ids)
  io.write("BENCH_JSON " .. out .. "\n")
end
