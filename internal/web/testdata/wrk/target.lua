-- Cycles GET /targets/{id} through the target ids listed one per line in
-- the file $IDS (default ids.txt), e.g.
--   sqlite3 STORE "SELECT target FROM target_access WHERE agency='fr-pp-dpj' ORDER BY score DESC LIMIT 200" > ids.txt
-- and prints p50/p95/p99 (ms) like pct.lua.
ids = {}
for line in io.lines(os.getenv("IDS") or "ids.txt") do
  if line ~= "" then ids[#ids + 1] = line end
end
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/targets/" .. ids[(i % #ids) + 1])
end

done = function(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, errors %d\n", summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("p%d %.1f ms\n", p, latency:percentile(p) / 1000))
  end
end
