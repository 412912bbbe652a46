-- InvokeEndpointWithResponseStream for container fleets: frame a container's plain answer as an
-- AWS event stream (application/vnd.amazon.eventstream), in HAProxy.
--
-- SageMaker's container contract: the container gets the same `POST /invocations` for a stream
-- (with the API's headers; Greenshift adds X-Greenshift-Response-Stream) and answers it with a
-- plain HTTP response, typically chunked, sending each part as it is produced. SageMaker frames
-- it; a container never speaks the event-stream format. Here this filter does: every piece of
-- the container's body HAProxy receives becomes one PayloadPart message as soon as it arrives
-- (greenshift/fleet/serving/eventstream.py is the same framing in Python; the tests compare the
-- two byte for byte). An answer of 4xx/5xx is not framed: the frontend turns it into ModelError.
-- An answer the container cuts (it dies mid-stream) is cut here too: HAProxy aborts the
-- client's side as soon as the server's breaks, and a Lua filter cannot add a message after
-- that (measured with 2.8: no http_end, and end_analyze's channel refuses writes in HTTP mode).
-- The stream relay behind which every stream runs (greenshift/dataplane/relay.py) sees the cut
-- and ends the stream with SageMaker's ModelStreamError event of ErrorCode StreamBroken.
--
-- Declared (`filter lua.gs_eventstream`) only in the backends of container fleets, and it frames
-- only stream requests (txn.gses, set by the backend from the request's stream header): plain
-- invocations of those fleets pass through, and built-in fleets, which frame their answers
-- themselves, never meet it. What a plain invocation of a container fleet still pays: the
-- filter's instance and one http_headers call per channel (only a callback can register the
-- data filter, and new() sees no request). Measured (HAProxy CPU per keep-alive request, one
-- thread, 2-core box): 19-21 us without the filter, 30-31 us with it as here, 38-50 us with a
-- start_analyze callback as well; the frontend and other backends are unchanged.

local CRC_TABLE = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = 0xEDB88320 ~ (c >> 1) else c = c >> 1 end
  end
  CRC_TABLE[i] = c
end

local function crc32(s, crc)
  crc = (crc or 0) ~ 0xFFFFFFFF
  for i = 1, #s do
    crc = CRC_TABLE[(crc ~ s:byte(i)) & 0xFF] ~ (crc >> 8)
  end
  return crc ~ 0xFFFFFFFF
end

local function headers(pairs)
  local out = {}
  for _, pair in ipairs(pairs) do
    out[#out + 1] = string.pack(">s1B s2", pair[1], 7, pair[2])
  end
  return table.concat(out)
end

local function message(head, payload)
  local total = 12 + #head + #payload + 4
  local prelude = string.pack(">I4I4", total, #head)
  prelude = prelude .. string.pack(">I4", crc32(prelude))
  local body = prelude .. head .. payload
  return body .. string.pack(">I4", crc32(body))
end

local PART = headers({
  { ":event-type", "PayloadPart" },
  { ":content-type", "application/octet-stream" },
  { ":message-type", "event" },
})

local function payload_part(data)
  return message(PART, data)
end

-- The framing, for the tests: loaded outside HAProxy (no `core`), the file stops here.
GS_EVENTSTREAM = { payload_part = payload_part, crc32 = crc32 }

if core == nil or core.register_filter == nil then return end

local Framer = {}
Framer.id = "greenshift eventstream"
Framer.flags = filter.FLT_CFG_FL_HTX
Framer.__index = Framer

function Framer:new()
  return setmetatable({ on = false }, Framer)
end

function Framer:http_headers(txn, msg)
  if not msg.channel:is_resp() or txn:get_var("txn.gses") == nil then return end
  local status = tonumber(msg:get_stline().code) or 0
  if status >= 400 then return end
  local hdrs = msg:get_headers()
  local ctype = hdrs["content-type"] and hdrs["content-type"][0]
  -- A container that frames its answer itself (what Greenshift asked of containers before this
  -- filter) is passed through as it is.
  if ctype ~= nil and ctype:lower():find("application/vnd.amazon.eventstream", 1, true) then
    return
  end
  self.on = true
  filter.register_data_filter(self, msg.channel)
  -- The framed body is longer than the container's: a Content-Length would be wrong, and
  -- without one HAProxy sends the answer chunked.
  msg:del_header("content-length")
  msg:set_header("X-Amzn-SageMaker-Content-Type", ctype or "application/json")
  msg:set_header("Content-Type", "application/vnd.amazon.eventstream")
end

function Framer:http_payload(txn, msg)
  if not self.on then return end
  local n = msg:input()
  if n == 0 then return end
  local data = msg:body(0, n)
  if data == nil or #data == 0 then return end
  local framed = payload_part(data)
  msg:set(framed, 0, n)
  msg:forward(#framed)
end

core.register_filter("gs_eventstream", Framer, function(f, _args) return f end)
