-- wrk's requests for bench/submit and bench/read: each as a random owner (its token; for a
-- read, its own task). bench/api_ceiling.py fills in the lists.
local tokens = @TOKENS@
local agents = @AGENTS@
local tasks = @TASKS@
local kind = "@KIND@"
math.randomseed(os.time())
request = function()
  local i = math.random(#tokens)
  local headers = {["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json"}
  if kind == "submit" then
    local body = '{"taskType": "code_review", "maxBudget": @BUDGET@, "agentId": "' ..
      agents[math.random(#agents)] ..
      '", "input": {"description": "Review this snippet", "code": "x = 1"}}'
    return wrk.format("POST", "/api/v1/tasks", headers, body)
  end
  return wrk.format("GET", "/api/v1/tasks/" .. tasks[i], headers)
end
