-- wrk script of the edge benchmark (loadtest/edge/wrk.py). Every wrk thread has exactly one
-- connection, so its requests go out one after another, each with the next line of its own
-- header file (a voucher sequence with rising amounts: one channel per connection).
-- args: path prefix, chunk count, header file pattern (%d = thread id), header name, cycle,
-- and a path suffix ("?count=16" for chunk runs; may be empty)
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  chunks = tonumber(args[2])
  header = args[4]
  cycle = args[5] == "1"
  suffix = args[6] or ""
  values = {}
  for line in io.lines(string.format(args[3], id)) do
    values[#values + 1] = line
  end
  n = #values
  used = 0
  exhausted = 0
end

function request()
  used = used + 1
  local i = used
  if i > n then
    if cycle then
      i = (i - 1) % n + 1
    else
      exhausted = exhausted + 1
      i = n
    end
  end
  return wrk.format("GET", prefix .. ((used - 1) % chunks) .. suffix, {[header] = values[i]})
end

function done(summary, latency, requests)
  local used_total, exhausted_total = 0, 0
  for _, t in ipairs(threads) do
    used_total = used_total + t:get("used")
    exhausted_total = exhausted_total + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"sent": %d, "exhausted": %d, "latency_p50_us": %d, "latency_p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    used_total, exhausted_total, latency:percentile(50), latency:percentile(99)))
end
