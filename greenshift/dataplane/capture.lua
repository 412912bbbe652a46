-- Data capture, the data-plane half (greenshift/capture explains the whole).
-- The backend rules of a capturing fleet (config.py, capture_rules) sample a request into
-- txn.gscap and build its tab-separated record line in txn.gsline natively;
-- `http-response lua.gs_capture` puts it into a bounded in-memory queue, and a task
-- sends the queue in batches to the capture writer's unix socket. Nothing here waits on the
-- writer: when the queue is full (the writer or its disk is slow) records are dropped and
-- counted, so no request is ever slowed by capture.
-- Loaded with lua-load-per-thread: one queue, one task and one connection per HAProxy thread, so
-- no thread waits on another's Lua lock.
local queue, qlen, qbytes, dropped, queued, nolines = {}, 0, 0, 0, 0, 0
local MAX_RECORDS = tonumber(os.getenv("GS_CAPTURE_MAX_RECORDS") or "") or 20000
local MAX_BYTES = tonumber(os.getenv("GS_CAPTURE_MAX_BYTES") or "") or 32 * 1024 * 1024
local SOCKET = os.getenv("GS_CAPTURE_SOCKET")

core.register_action("gs_capture", {"http-res"}, function(txn)
  local line = txn:get_var("txn.gsline")
  if line == nil then nolines = nolines + 1; return end
  if qlen >= MAX_RECORDS or qbytes + #line > MAX_BYTES then
    dropped = dropped + 1
    return
  end
  qlen = qlen + 1
  qbytes = qbytes + #line + 1
  queue[qlen] = line
  queued = queued + 1
end, 0)

-- Sends at most BATCH records per write and yields between writes: the Lua code of a thread
-- must never run long (HAProxy's watchdog aborts a thread stuck for seconds).
local BATCH = 1000

core.register_task(function()
  local sock = nil
  while true do
    while (qlen > 0 or dropped > 0) and SOCKET do
      local n = math.min(qlen, BATCH)
      local batch = table.concat(queue, "\n", 1, n) .. "\n"
      if n == qlen then
        queue, qlen, qbytes = {}, 0, 0
      else
        queue = table.move(queue, n + 1, qlen, 1, {})
        qlen = qlen - n
        qbytes = math.max(0, qbytes - #batch)
      end
      batch = "#queued\t" .. queued .. "\n#nolines\t" .. nolines .. "\n" .. batch
      if dropped > 0 then
        -- The writer counts what was lost here too (CaptureWriter.dropped).
        batch = "#dropped\t" .. dropped .. "\n" .. batch
        dropped = 0
      end
      if sock == nil then
        sock = core.tcp()
        sock:settimeout(5)
        local ok, connected = pcall(sock.connect, sock, "unix@" .. SOCKET)
        if not (ok and connected) then
          sock = nil
        end
      end
      -- send() returns once the whole string is in the socket's buffer (it yields meanwhile);
      -- it may also raise (a timeout): pcall, or the task would die and capture stop for good.
      local sent = false
      if sock ~= nil then
        local ok, result = pcall(sock.send, sock, batch)
        sent = ok and result ~= nil
      end
      if not sent then
        if sock ~= nil then pcall(sock.close, sock) end
        sock = nil
        dropped = dropped + n
        break
      end
      core.msleep(1)  -- give the thread back between batches
    end
    core.msleep(100)
  end
end)
