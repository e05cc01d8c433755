-- wrk script: POST /createUser with a distinct name per request.
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"Nombre": "bench user ' .. counter .. '"}'
  return wrk.format("POST", "/createUser", { ["Content-Type"] = "application/json" }, body)
end
