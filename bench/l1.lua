-- bench/run (l1): every request carries one of 10,000 keys in X-Key, in turn, so that the
-- limit_req zone keyed by $http_x_key holds 10,000 entries and each request looks one up.
local n = 0
request = function()
  n = (n + 1) % 10000
  return wrk.format(nil, nil, { ["X-Key"] = tostring(n) })
end
