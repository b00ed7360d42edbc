-- lark-errors.lua - lighttpd's answers for a larkd that is down (mod_magnet,
-- magnet.attract-response-start-to; conf/lighttpd.conf says why).
--
-- When larkd is not running, restarting, or dies with a request in flight,
-- lighttpd answers for it: 503 when it cannot connect, 500 (or 502/504)
-- when the connection breaks before an answer. API.md: a dead or restarting
-- service is 503 unavailable with Retry-After, never 500 (500 means a bug).
-- larkd's own error answers always carry Cache-Control: no-store; lighttpd's
-- never do, so only lighttpd's are rewritten - larkd's own 500 stays a 500.
local r = lighty.r
local status = r.req_item.http_status
if (status == 500 or status == 502 or status == 503 or status == 504)
    and r.resp_header["Cache-Control"] == nil then
  r.resp_header["Content-Type"] = "application/json"
  r.resp_header["Cache-Control"] = "no-store"
  r.resp_header["Retry-After"] = "1"
  r.resp_body.set({ '{"error":{"code":"unavailable","message":"the service is unavailable, retry shortly"}}\n' })
  return 503 -- the status (req_item.http_status is read-only)
end
return 0
