-- One wrk script for every scenario, steered by environment variables:
--   BENCH_PATH         the path to request
--   BENCH_METHOD       GET (default) or POST
--   BENCH_BODY         a form body for POST (application/x-www-form-urlencoded)
--   BENCH_COOKIE       a Cookie header sent with every request
--   BENCH_COOKIE_FILE  a file of Cookie headers, one a line, each sent ONCE
--                      (remember tokens rotate on use); the lines are dealt
--                      out among the threads
--   BENCH_LINES_ARE    "cookie" (default) or "body": with "body", each line of
--                      BENCH_COOKIE_FILE is a request body instead (refresh tokens)
--   BENCH_CONTENT_TYPE the body's Content-Type (default: a form)
--   BENCH_AUTHORIZATION an Authorization header sent with every request
--   BENCH_USER_AGENT   the User-Agent header
--   BENCH_THREADS      the number of wrk threads (to deal the cookie lines)
-- done() prints one JSON line that bench/run.py reads.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  path = os.getenv("BENCH_PATH") or "/"
  method = os.getenv("BENCH_METHOD") or "GET"
  body = os.getenv("BENCH_BODY")
  headers = {}
  headers["User-Agent"] = os.getenv("BENCH_USER_AGENT") or "wrk"
  local static_cookie = os.getenv("BENCH_COOKIE")
  if static_cookie and static_cookie ~= "" then
    headers["Cookie"] = static_cookie
  end
  local authorization = os.getenv("BENCH_AUTHORIZATION")
  if authorization and authorization ~= "" then
    headers["Authorization"] = authorization
  end
  lines_are = os.getenv("BENCH_LINES_ARE") or "cookie"
  content_type = os.getenv("BENCH_CONTENT_TYPE") or "application/x-www-form-urlencoded"
  if body or lines_are == "body" then
    headers["Content-Type"] = content_type
  end
  cookies = nil
  used = 0
  exhausted = 0
  local cookie_file = os.getenv("BENCH_COOKIE_FILE")
  if cookie_file and cookie_file ~= "" then
    local count = tonumber(os.getenv("BENCH_THREADS") or "1")
    cookies = {}
    local i = 0
    for line in io.lines(cookie_file) do
      if i % count == id then
        table.insert(cookies, line)
      end
      i = i + 1
    end
  end
  fixed_request = wrk.format(method, path, headers, body)
end

function request()
  if cookies == nil then
    return fixed_request
  end
  used = used + 1
  local line = cookies[used]
  if lines_are == "body" then
    if line == nil then
      -- Out of fresh tokens: send an empty object, and say so in the report.
      exhausted = exhausted + 1
      line = "{}"
    end
    return wrk.format(method, path, headers, line)
  end
  if line == nil then
    -- Out of fresh tokens: send no cookie, and say so in the report.
    exhausted = exhausted + 1
    headers["Cookie"] = nil
  else
    headers["Cookie"] = line
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local exhausted_total = 0
  for _, thread in ipairs(threads) do
    exhausted_total = exhausted_total + (thread:get("exhausted") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, '
      .. '"p99_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeouts": %d, "exhausted": %d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    exhausted_total))
end
