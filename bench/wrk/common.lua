-- Shared by the bench's wrk scripts (loaded with dofile): counts the answers by status,
-- flags an expected status whose body is not what the figure asks for ("<status>-unexpected"),
-- and prints the counts of every thread after the run, one "status <key> <count>" line each,
-- for bench/load.py to parse. Each wrk thread runs its own Lua state: `tid` (0, 1, ...) is
-- set in it by setup() before its init() runs.
--
-- Environment: BENCH_EXPECT (the status every answer should have, default 200),
-- BENCH_DATA (a file of lines the script reads in init), BENCH_THREADS (wrk's --threads).

local threads = {}
expected = tonumber(os.getenv("BENCH_EXPECT") or "200")
counts = {}
check_body = nil -- a script sets it to function(body) -> bool to look into the answers

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

threads_total = tonumber(os.getenv("BENCH_THREADS") or "1")

-- where thread `tid` starts in a list of `count` rows: the threads start evenly apart, so
-- the requests in flight at once name different rows (different licenses: an activation
-- holds its license's row lock, and two requests on one license wait for each other)
function start_of(count)
  return tid * math.floor(count / threads_total)
end

function data_lines()
  local rows = {}
  for line in io.lines(os.getenv("BENCH_DATA")) do
    if line ~= "" then
      local fields = {}
      for field in line:gmatch("%S+") do
        fields[#fields + 1] = field
      end
      rows[#rows + 1] = fields
    end
  end
  return rows
end

-- a client address per request (the gateway believes X-Forwarded-For from 127.0.0.1 in the
-- bench): many clients, as in production, rather than one
function forwarded_for(n)
  return string.format("10.%d.%d.%d", 17 + tid, math.floor(n / 250) % 250, n % 250 + 1)
end

function response(status, headers, body)
  local key = tostring(status)
  if status == expected and check_body ~= nil and not check_body(body) then
    key = key .. "-unexpected"
  end
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("counts")
    for key, count in pairs(seen) do
      total[key] = (total[key] or 0) + count
    end
  end
  for key, count in pairs(total) do
    io.write(string.format("status %s %d\n", key, count))
  end
end
