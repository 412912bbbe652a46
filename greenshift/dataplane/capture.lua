-- Data capture, the data-plane half (greenshift/capture explains the whole).
-- The backend rules of a capturing fleet (config.py, capture_rules) sample a request into
-- txn.gscap and build its record natively: the fixed fields in txn.gsline, the bodies (base64)
-- in txn.gscin and txn.gscout. Three Lua *converters* hand them over, in this order, on one
-- thread: gs_line, gs_in (when input is captured), gs_out, which completes the record and puts
-- it into a bounded in-memory queue; a task sends the queue in batches to the capture writer's
-- unix socket. Converters, not an action: an action call builds a txn object and a coroutine
-- per call (~27k instructions, measured with callgrind), a converter call costs ~3-8k.
-- Nothing here waits on the writer: when the queue is full (the writer or its disk is slow)
-- records are dropped and counted, so no request is ever slowed by capture.
-- Loaded with lua-load-per-thread: one queue, one task and one connection per HAProxy thread,
-- so no thread waits on another's Lua lock (and a record's three calls, which run one after
-- the other in one rule list, never interleave with another's); the writer adds up the
-- threads' counts.
--
-- Every record is accounted for: each batch starts with `#batch N` (the records it brings: the
-- writer counts those a dying connection cut), `#queued N` (records queued since the
-- last batch that reached the writer), `#dropped N` (dropped meanwhile) and `#nolines N`; a
-- batch that could not be sent puts its counts back and its records into `dropped`. A batch
-- (possibly empty) leaves every HEARTBEAT_MS, so the connection never idles into the
-- cosocket's timeout and the writer can tell a silent sender from an idle one.
local queue, qlen, qbytes, dropped, queued, nolines = {}, 0, 0, 0, 0, 0
local MAX_RECORDS = tonumber(os.getenv("GS_CAPTURE_MAX_RECORDS") or "") or 20000
local MAX_BYTES = tonumber(os.getenv("GS_CAPTURE_MAX_BYTES") or "") or 32 * 1024 * 1024
local SOCKET = os.getenv("GS_CAPTURE_SOCKET")
-- The cosocket closes a connection idle this long (seconds); HEARTBEAT_MS keeps it busy.
local TIMEOUT = tonumber(os.getenv("GS_CAPTURE_TIMEOUT") or "") or 5

-- The record being handed over on this thread: its fixed fields, then its input body.
local line, input = nil, ""

core.register_converters("gs_line", function(value)
  if line ~= nil then nolines = nolines + 1 end  -- a record whose gs_out never came
  line, input = value, ""
  return ""
end)

core.register_converters("gs_in", function(value)
  if value ~= "-" then input = value end  -- "-": no input body (var default)
  return ""
end)

core.register_converters("gs_out", function(value)
  if line == nil then nolines = nolines + 1; return "" end
  if value == "-" then value = "" end  -- no output body (var default)
  local rec = line .. input .. "\t" .. value
  line, input = nil, ""
  if qlen >= MAX_RECORDS or qbytes + #rec > MAX_BYTES then
    dropped = dropped + 1
    return ""
  end
  qlen = qlen + 1
  qbytes = qbytes + #rec + 1
  queue[qlen] = rec
  queued = queued + 1
  return ""
end)

-- Sends at most BATCH records per write and yields between writes: the Lua code of a thread
-- must never run long (HAProxy's watchdog aborts a thread stuck for seconds).
local BATCH = 1000
local HEARTBEAT_MS = 1000
local IDLE_MS = 50
-- After a batch that emptied the queue, wait this long for the next: a send has a fixed cost
-- (its counts, the cosocket's wake-ups), so fewer, larger batches are cheaper per record; the
-- writer only flushes every second anyway. A full batch is followed at once by the next.
local GATHER_MS = 20

local function connect()
  local sock = core.tcp()
  sock:settimeout(TIMEOUT)
  local ok, connected = pcall(sock.connect, sock, "unix@" .. SOCKET)
  if ok and connected then return sock end
  pcall(sock.close, sock)
  return nil
end

-- HAProxy's send returns the bytes written, and -1 (not nil) once the connection is closed,
-- e.g. by the cosocket's timeout: anything but the whole batch is a failure.
local function send(sock, data)
  local ok, result = pcall(sock.send, sock, data)
  return ok and result == #data
end

core.register_task(function()
  if not SOCKET then return end
  local sock = nil
  local last = 0
  while true do
    local now = core.now()
    local now_ms = now.sec * 1000 + now.usec // 1000
    if qlen > 0 or dropped > 0 or now_ms - last >= HEARTBEAT_MS then
      local n = math.min(qlen, BATCH)
      local records = n > 0 and (table.concat(queue, "\n", 1, n) .. "\n") or ""
      local batch_bytes = 0
      if n == qlen then
        batch_bytes = qbytes
        queue, qlen, qbytes = {}, 0, 0
      else
        queue = table.move(queue, n + 1, qlen, 1, {})
        qlen = qlen - n
        batch_bytes = #records
        qbytes = math.max(0, qbytes - batch_bytes)
      end
      -- Counts of the records queued so far, minus those still waiting (they go with a later
      -- batch): the writer's sum of `#queued` equals what it received plus what was dropped.
      local q, d, l = queued - qlen, dropped, nolines
      queued, dropped, nolines = qlen, 0, 0
      local data = "#batch\t" .. n .. "\n#queued\t" .. q .. "\n#dropped\t" .. d .. "\n#nolines\t" .. l .. "\n" .. records
      if sock == nil then sock = connect() end
      local sent = sock ~= nil and send(sock, data)
      if not sent and sock ~= nil then
        -- A connection closed under us: one retry on a fresh one (nothing of this batch was
        -- written, HAProxy writes a string whole or not at all).
        pcall(sock.close, sock)
        sock = connect()
        sent = sock ~= nil and send(sock, data)
      end
      if sent then
        last = now_ms
      else
        if sock ~= nil then pcall(sock.close, sock) end
        sock = nil
        -- The batch is lost: its records count as dropped, its counts go with the next batch.
        queued = queued + q
        dropped = dropped + d + n
        nolines = nolines + l
        core.msleep(100)
      end
      core.msleep(n == BATCH and 1 or GATHER_MS)  -- give the thread back between batches
    else
      core.msleep(IDLE_MS)
    end
  end
end)
