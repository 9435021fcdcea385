-- POST /api/v1/activations of new installations: "<BENCH_PREFIX>-<thread>-<n>", unique per
-- request (a counter per thread), over the licenses of BENCH_DATA ("license_id password" a
-- line) round-robin, each thread from its own place in the list. Expected: 201 (a new seat).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local licenses = {}
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local n = 0
local first = 0

function init(args)
  licenses = data_lines()
  first = start_of(#licenses)
end

function request()
  n = n + 1
  local license = licenses[(first + n) % #licenses + 1]
  local installation = string.format("%s-%d-%d", prefix, tid, n)
  local body = string.format(
    '{"license_id": "%s", "password": "%s", "installation_id": "%s", "machine_name": "%s"}',
    license[1], license[2], installation, "Bench machine " .. installation
  )
  return wrk.format("POST", "/api/v1/activations", {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = forwarded_for(n),
  }, body)
end
