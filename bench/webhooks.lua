-- wrk script of bench/ingest.py: replays pre-signed webhook requests, counts answers.
--
-- Environment (read by every Lua state wrk creates):
--   BENCH_DATA      file of requests, one per line: id \t timestamp \t signature \t path \t body
--   BENCH_MODE      "cycle" (wrap around: for the no-database baseline) or "once" (each request
--                   is sent at most once; the thread stops and reports `exhausted` at the end)
--   BENCH_DELAY_MS  mean pause (ms) before each request of a connection; 0 = closed loop.
--                   The pause is uniform in [0.5, 1.5] x mean, so connections do not march in step;
--                   wrk also delays each connection's first request: those pauses are uniform in
--                   [0, 1] x mean (BENCH_CONNECTIONS of them), so the paced load starts at once.
--   BENCH_IDS_OUT   file where done() writes the event ids of the 202 answers (one per line)
--
-- wrk calls request() once at start-up to check the script: that request is never sent, so
-- `calls` overcounts the requests written by one.

local reqs = {}
local n = 0
local i = 0
local cycle = os.getenv("BENCH_MODE") == "cycle"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local first_delays = tonumber(os.getenv("BENCH_CONNECTIONS") or "0") or 0
local delays = 0

statuses = {}
ids = {}
nids = 0
calls = 0
exhausted = 0
loaded = 0

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local id, ts, sig, path, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if id then
      n = n + 1
      reqs[n] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body)
    end
  end
  loaded = n
  math.randomseed(os.time())
  if delay_ms > 0 then
    delay = function()
      delays = delays + 1
      if delays <= first_delays then
        return delay_ms * math.random()
      end
      return delay_ms * (0.5 + math.random())
    end
  end
end

function request()
  i = i + 1
  if i > n then
    if cycle then
      i = 1
    else
      exhausted = 1
      i = n
      wrk.thread:stop()
    end
  end
  calls = calls + 1
  return reqs[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    local id = body:match('"event_id":%s*(%d+)')
    if id then
      nids = nids + 1
      ids[nids] = id
    end
  end
end

function done(summary, latency, requests)
  local total_calls, total_exhausted, total_loaded = 0, 0, 0
  local merged = {}
  local out = os.getenv("BENCH_IDS_OUT")
  local f = out and io.open(out, "w") or nil
  for _, t in ipairs(threads) do
    total_calls = total_calls + (t:get("calls") or 0)
    total_exhausted = total_exhausted + (t:get("exhausted") or 0)
    total_loaded = total_loaded + (t:get("loaded") or 0)
    for code, count in pairs(t:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + count
    end
    if f then
      for _, id in ipairs(t:get("ids") or {}) do
        f:write(id, "\n")
      end
    end
  end
  if f then f:close() end
  local parts = {}
  for code, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"statuses":{%s},"calls":%d,"loaded":%d,"exhausted":%d,'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,'
      .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), total_calls, total_loaded, total_exhausted,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
