-- POST /api/v1/validations, rotating through the certificates of BENCH_DATA (one a line);
-- an answer counts as expected only when it is 200 with code VALID.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local bodies = {}
local n = 0

function init(args)
  for _, row in ipairs(data_lines()) do
    bodies[#bodies + 1] = '{"certificate": "' .. row[1] .. '"}'
  end
  n = start_of(#bodies)
end

check_body = function(body)
  return body ~= nil and body:find('"code":%s*"VALID"') ~= nil
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/v1/validations", {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = forwarded_for(n),
  }, bodies[n % #bodies + 1])
end
