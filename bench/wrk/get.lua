-- A plain GET of the URL wrk is given (the echo, the gateway's /healthz): answers counted by
-- status (common.lua).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
