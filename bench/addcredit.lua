-- wrk script: AddCredit with a random client among CLIENTS (or always client 1 when HOT=1).
-- Usage: IDENT=... SECRET=... CLIENTS=10000 HOT=0 wrk -t2 -c32 -d10s -s bench/addcredit.lua URL
local ident = os.getenv("IDENT")
local secret = os.getenv("SECRET")
local clients = tonumber(os.getenv("CLIENTS") or "10000")
local hot = os.getenv("HOT") == "1"
local prefix = "action=AddCredit&identifier=" .. ident .. "&secret=" .. secret ..
  "&description=Bench+credit&amount=1.25&responsetype=json&clientid="
local errors = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

request = function()
  local id = 1
  if not hot then id = math.random(1, clients) end
  return wrk.format(nil, nil, nil, prefix .. id)
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"success"', 1, true) then
    errors = errors + 1
  end
end

done = function(summary, latency, requests)
  local s = summary
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "non2xx=%d socket_errors=%d\n",
    s.requests, s.duration, s.requests / (s.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    s.errors.status, s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout))
end
