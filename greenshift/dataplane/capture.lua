-- Data capture, the data-plane half (greenshift/capture explains the whole).
-- The backend rules of a capturing fleet (config.py, capture_rules) sample a request into
-- txn.gscap and keep its body and headers in variables; `http-response lua.gs_capture` puts
-- one tab-separated line per sampled invocation into a bounded in-memory queue, and a task
-- sends the queue in batches to the capture writer's unix socket. Nothing here waits on the
-- writer: when the queue is full (the writer or its disk is slow) records are dropped and
-- counted, so no request is ever slowed by capture.
local queue, qlen, qbytes, dropped = {}, 0, 0, 0
local MAX_RECORDS = tonumber(os.getenv("GS_CAPTURE_MAX_RECORDS") or "") or 10000
local MAX_BYTES = tonumber(os.getenv("GS_CAPTURE_MAX_BYTES") or "") or 64 * 1024 * 1024
local SOCKET = os.getenv("GS_CAPTURE_SOCKET")

core.register_action("gs_capture", {"http-res"}, function(txn)
  local f, c = txn.f, txn.c
  local input = txn:get_var("txn.gscin") or "-"
  local output = "-"
  if txn:get_var("txn.gscout") and not txn:get_var("txn.gsstream") then
    output = c:base64(f:res_body() or "")
  end
  local now = core.now()
  local line = table.concat({
    f:be_name() or "", f:uuid() or "",
    string.format("%d", now.sec * 1000 + now.usec // 1000), f:status() or "0",
    txn:get_var("txn.gscct") or "", c:base64(f:res_hdr("content-type") or ""),
    txn:get_var("txn.gsca") or "", txn:get_var("txn.gsid") or "", input, output,
  }, "\t")
  if qlen >= MAX_RECORDS or qbytes + #line > MAX_BYTES then
    dropped = dropped + 1
    return
  end
  qlen = qlen + 1
  qbytes = qbytes + #line + 1
  queue[qlen] = line
end, 0)

core.register_task(function()
  local sock = nil
  while true do
    if qlen > 0 and SOCKET then
      local batch = table.concat(queue, "\n", 1, qlen) .. "\n"
      queue, qlen, qbytes = {}, 0, 0
      if sock == nil then
        sock = core.tcp()
        sock:settimeout(5)
        if not sock:connect("unix@" .. SOCKET) then
          sock = nil
        end
      end
      if sock == nil or not sock:send(batch) then
        if sock ~= nil then sock:close() end
        sock = nil
        dropped = dropped + select(2, batch:gsub("\n", ""))
      end
    end
    core.msleep(100)
  end
end)
