-- wrk script for the bench's tools/call request. The runner passes the request through the
-- environment (the session id differs per target): WRK_BODY, WRK_HEADERS (lines "name: value"),
-- and WRK_UNIQUE_IDS=1 for targets that need a fresh JSON-RPC id per request.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or ""
for line in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

-- Without a request() function wrk builds the request once (cheapest). With fresh ids it
-- formats each request, which costs wrk CPU, so only targets that need it get it.
if os.getenv("WRK_UNIQUE_IDS") == "1" then
  local pre, post = string.match(wrk.body, '^(.-"id":)1(,.*)$')
  local id = 1000
  request = function()
    id = id + 1
    return wrk.format(nil, nil, nil, pre .. id .. post)
  end
end

-- One JSON line the runner parses (latencies in µs).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
