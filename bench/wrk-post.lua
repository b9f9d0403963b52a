-- wrk script for the bench's tools/call request. The runner passes the request through the
-- environment (the session id differs per target): WRK_BODY, WRK_HEADERS (lines "name: value"),
-- WRK_UNIQUE_IDS=1 for targets that need a fresh JSON-RPC id per request, and WRK_VARY_MARK
-- (a number in the body) with WRK_VARY_START for targets that need a fresh value in its place
-- per request (cedar-proxy's cold calls: distinct arguments miss the decision cache).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or ""
for line in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

-- Without a request() function wrk builds the request once (cheapest). With fresh ids it
-- formats each request, which costs wrk CPU, so only targets that need it get it.
local mark = os.getenv("WRK_VARY_MARK") or ""
if mark ~= "" then
  local at = string.find(wrk.body, mark, 1, true)
  local vpre, vpost = string.sub(wrk.body, 1, at - 1), string.sub(wrk.body, at + #mark)
  local value = tonumber(os.getenv("WRK_VARY_START"))
  if os.getenv("WRK_UNIQUE_IDS") == "1" then
    local pre, post = string.match(vpre, '^(.-"id":)1(,.*)$')
    local id = 1000
    request = function()
      id = id + 1
      value = value + 1
      return wrk.format(nil, nil, nil, pre .. id .. post .. string.format("%d", value) .. vpost)
    end
  else
    request = function()
      value = value + 1
      return wrk.format(nil, nil, nil, vpre .. string.format("%d", value) .. vpost)
    end
  end
elseif os.getenv("WRK_UNIQUE_IDS") == "1" then
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
