-- POST /api/v1/activations of installations already active (BENCH_DATA: "license_id
-- password installation_id" a line), rotating through them. Expected: 200 (no new seat).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local bodies = {}
local n = 0

function init(args)
  for _, row in ipairs(data_lines()) do
    bodies[#bodies + 1] = string.format(
      '{"license_id": "%s", "password": "%s", "installation_id": "%s", "machine_name": "%s"}',
      row[1], row[2], row[3], "Bench machine " .. row[3]
    )
  end
  n = start_of(#bodies)
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/v1/activations", {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = forwarded_for(n),
  }, bodies[n % #bodies + 1])
end
