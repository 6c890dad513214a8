-- wrk script: POSTs pre-signed WhatsApp webhooks, one line per body in a file:
--   <X-Hub-Signature-256 value> <JSON body>
-- Run with one wrk thread (-t1): it sends the bodies in order from the offset given, so a
-- measured run can go on where the warm-up stopped (new messages, not redeliveries).
local sigs, bodies = {}, {}
local counter = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local sig, body = line:match("^(%S+) (.*)$")
    sigs[#sigs + 1] = sig
    bodies[#bodies + 1] = body
  end
  file:close()
  counter = tonumber(args[2] or "0") or 0
end

function request()
  counter = counter + 1
  local i = (counter % #bodies) + 1
  return wrk.format("POST", "/webhooks/whatsapp",
    {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sigs[i]}, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
