"""SigV4 on the runtime: InvokeEndpoint refused unless signed by a configured key (issue 14 item 2).

With access keys configured the data plane loads a small Lua action into HAProxy (Lua 5.4 and the
`sha2` converter are built in) that checks every invocation as the control API's
`greenshift.api.sigv4` does, for service `sagemaker`, and answers AWS's 403 errors
(`x-amzn-ErrorType` + `{"message"}`, as botocore's sagemaker-runtime client parses them).

The Lua file is generated with the keys in it, mode 0600 in the 0700 home. Derived signing keys
are cached (as HMAC pads) per access key and day, so a request costs four SHA-256: the body, the
canonical request, and the two of one HMAC, done over the sha2 converter (see the Lua for why).
Measured: about 65 us of HAProxy CPU a request (bench/sigv4_bench.py, docs/security.md).

The body must be hashed (botocore sends no x-amz-content-sha256 for sagemaker-runtime), and
HAProxy's Lua sees only what its buffer holds: with SigV4 on the buffer is SIGV4_BUFFER_BYTES, and
a body up to SIGV4_MAX_BODY_BYTES is verified there (`gs_sigv4`). A larger one (SageMaker takes
6 MB) is not buffered in HAProxy: every buffer costs every request (the retry copies a whole one;
measured 256 KB +20 us a request, 1 MB several times that, and 6 MB buffers would be 6 MB of
memory per connection). Instead, after the checks that need no body (`gs_sigv4_headers`: a known
key, a fresh date, the right scope, so nobody without a key gets a body buffered), it goes to the
relay (greenshift/dataplane/relay.py), which reads it, hashes it and sends it back to HAProxy on a
private socket with the hash in PAYLOAD_HEADER; there `gs_sigv4_relayed` verifies the signature
with that hash. One verifier, in Lua, for both; the relay holds no key and decides nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SIGV4_BUFFER_BYTES = 65_536
# The largest signed body: the buffer also holds the headers and HAProxy's rewrite reserve.
SIGV4_MAX_BODY_BYTES = SIGV4_BUFFER_BYTES - 16_384
LUA_ACTION = "gs_sigv4"  # the whole check, body in the buffer
LUA_HEADERS_ACTION = "gs_sigv4_headers"  # what needs no body, before a large body is relayed
LUA_RELAYED_ACTION = "gs_sigv4_relayed"  # the signature, with the relay's hash of the body
# Set by the relay, read only on the relay's private frontend (a client's copy never counts).
PAYLOAD_HEADER = "X-Greenshift-Payload-Sha256"


def lua_source(keys: dict[str, str], region: str) -> str:
    """The Lua action, with `keys` (access key id -> secret) and the region baked in."""
    table = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in sorted(keys.items()))
    return (
        f"local KEYS = {{ {table} }}\nlocal REGION = {json.dumps(region)}\n"
        f"local MAX_BODY = {SIGV4_MAX_BODY_BYTES}\n"
        f"local PAYLOAD_HEADER = {json.dumps(PAYLOAD_HEADER.lower())}\n" + _LUA
    )


def write_lua(path: Path, keys: dict[str, str], region: str) -> None:
    """Write the action 0600 (it holds the secrets), atomically."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(lua_source(keys, region))
    os.replace(tmp, path)


_LUA = r"""
local SERVICE = "sagemaker"
local MAX_SKEW = 300
local MISMATCH = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
local derived = {}

local function refuse(txn, code, message)
  txn:set_var("txn.auth_code", code)
  txn:set_var("txn.auth_msg", message)
end

-- Hex in Lua, one format call: each converter called from Lua costs several microseconds.
local HEX32 = string.rep("%02x", 32)
local function hex(_, bin) return string.format(HEX32, bin:byte(1, 32)) end
-- HMAC-SHA256 over the sha2 converter (RFC 2104): HAProxy's hmac converter goes through
-- OpenSSL 3's one-shot HMAC, which looks the digest up on every call (~70 us a request here).
local function pads(txn, key)
  if #key > 64 then key = txn.c:sha2(key, 256) end
  local inner, outer = {}, {}
  for i = 1, 64 do
    local k = key:byte(i) or 0
    inner[i] = string.char(k ~ 0x36)
    outer[i] = string.char(k ~ 0x5c)
  end
  return { table.concat(inner), table.concat(outer) }
end

local function hmac_pads(txn, p, data)
  return txn.c:sha2(p[2] .. txn.c:sha2(p[1] .. data, 256), 256)
end

local function hmac(txn, key, data) return hmac_pads(txn, pads(txn, key), data) end

-- The pads of the derived signing key, per access key and day.
local function signing_pads(txn, akid, secret, date)
  local id = akid .. "/" .. date
  local p = derived[id]
  if p == nil then
    local key = hmac(txn, "AWS4" .. secret, date)
    key = hmac(txn, key, REGION)
    key = hmac(txn, key, SERVICE)
    key = hmac(txn, key, "aws4_request")
    p = pads(txn, key)
    derived[id] = p
  end
  return p
end

-- Days from civil (Howard Hinnant): the epoch of an X-Amz-Date, with no time zone involved.
local function epoch(stamp)
  local y, mo, d, h, mi, s = stamp:match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local function uri_encode(s, safe)
  return (s:gsub("[^%w%-%._~" .. safe .. "]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

local function canonical_query(q)
  if q == nil or q == "" then return "" end
  local pairs_ = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    pairs_[#pairs_ + 1] = { k, v }
  end
  table.sort(pairs_, function(a, b)
    if a[1] == b[1] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local out = {}
  for i, p in ipairs(pairs_) do out[i] = p[1] .. "=" .. p[2] end
  return table.concat(out, "&")
end

local function header_value(values)
  local out = {}
  local i = 0
  while values[i] ~= nil do
    local v = values[i]:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    out[#out + 1] = v
    i = i + 1
  end
  return table.concat(out, ",")
end

local function first(headers, name)
  local values = headers[name]
  if values == nil then return nil end
  return values[0]
end

-- Every check that needs no body; the parsed authorization, or nil once refused.
local function check_headers(txn, headers)
  local auth = first(headers, "authorization")
  if auth == nil or auth == "" then
    return refuse(txn, "MissingAuthenticationTokenException", "Missing Authentication Token")
  end
  local algorithm, rest = auth:match("^%s*(%S+)%s+(.*)$")
  if algorithm ~= "AWS4-HMAC-SHA256" then
    return refuse(txn, "IncompleteSignatureException",
      "Unsupported authorization algorithm '" .. (algorithm or auth) .. "'.")
  end
  local fields = {}
  for part in rest:gmatch("[^,]+") do
    local k, v = part:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if k then fields[k] = v end
  end
  for _, name in ipairs({ "Credential", "SignedHeaders", "Signature" }) do
    if fields[name] == nil then
      return refuse(txn, "IncompleteSignatureException",
        "Authorization header requires '" .. name .. "' parameter.")
    end
  end
  local akid, date, region, service, terminator =
    fields.Credential:match("^([^/]+)/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
  if akid == nil then
    return refuse(txn, "IncompleteSignatureException",
      "Authorization header requires a Credential of the form '<access key>/<date>/<region>/<service>/aws4_request'.")
  end
  local signed = {}
  local signed_set = {}
  for name in fields.SignedHeaders:gmatch("[^;]+") do
    signed[#signed + 1] = name
    signed_set[name] = true
  end
  if not signed_set["host"] then
    return refuse(txn, "IncompleteSignatureException",
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
  end
  local amz_date = first(headers, "x-amz-date")
  if amz_date == nil then
    return refuse(txn, "IncompleteSignatureException",
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
  end
  if not signed_set["x-amz-date"] then
    return refuse(txn, "IncompleteSignatureException",
      "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
  end
  if headers["x-amz-content-sha256"] ~= nil and not signed_set["x-amz-content-sha256"] then
    return refuse(txn, "IncompleteSignatureException",
      "'x-amz-content-sha256' must be a 'SignedHeader' in the AWS Authorization.")
  end
  local secret = KEYS[akid]
  if secret == nil then
    return refuse(txn, "UnrecognizedClientException", "The security token included in the request is invalid.")
  end
  if terminator ~= "aws4_request" or date ~= amz_date:sub(1, 8) then
    return refuse(txn, "InvalidSignatureException",
      "Credential should be scoped to a valid date: '" .. amz_date:sub(1, 8) .. "', not '" .. date .. "'.")
  end
  if region ~= REGION then
    return refuse(txn, "InvalidSignatureException",
      "Credential should be scoped to a valid region, not '" .. region .. "'. ")
  end
  if service ~= SERVICE then
    return refuse(txn, "InvalidSignatureException",
      "Credential should be scoped to correct service: '" .. SERVICE .. "'. ")
  end
  local when = epoch(amz_date)
  local now = core.now().sec
  if when == nil then
    return refuse(txn, "IncompleteSignatureException", "X-Amz-Date is not of the form YYYYMMDDTHHMMSSZ.")
  end
  if when < now - MAX_SKEW then
    return refuse(txn, "InvalidSignatureException", "Signature expired: " .. amz_date .. " is now earlier than 5 minutes ago.")
  end
  if when > now + MAX_SKEW then
    return refuse(txn, "InvalidSignatureException", "Signature not yet current: " .. amz_date .. " is still later than 5 minutes from now.")
  end
  return { fields = fields, akid = akid, secret = secret, date = date, region = region,
           service = service, signed = signed, amz_date = amz_date }
end

-- The signature itself, given the SHA-256 (hex) of the body.
local function check_signature(txn, headers, a, payload)
  local fields, signed, date, region, service = a.fields, a.signed, a.date, a.region, a.service
  local amz_date = a.amz_date
  local declared = first(headers, "x-amz-content-sha256")
  if declared ~= nil then
    if declared == "UNSIGNED-PAYLOAD" or declared:sub(1, 10) == "STREAMING-" then
      return refuse(txn, "InvalidSignatureException",
        "x-amz-content-sha256 '" .. declared .. "' is not accepted by this service: sign the SHA-256 of the payload.")
    end
    if declared:lower() ~= payload then
      return refuse(txn, "InvalidSignatureException",
        "The provided 'x-amz-content-sha256' header does not match what was computed.")
    end
    payload = declared
  end
  local lines = { txn.sf:method(), uri_encode(txn.sf:path(), "/"), canonical_query(txn.sf:query()) }
  for _, name in ipairs(signed) do
    local values = headers[name]
    if values == nil then return refuse(txn, "InvalidSignatureException", MISMATCH) end
    lines[#lines + 1] = name .. ":" .. header_value(values)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = fields.SignedHeaders
  lines[#lines + 1] = payload
  local canonical = table.concat(lines, "\n")
  local scope = date .. "/" .. region .. "/" .. service .. "/aws4_request"
  local to_sign = "AWS4-HMAC-SHA256\n" .. amz_date .. "\n" .. scope .. "\n" .. hex(txn, txn.c:sha2(canonical, 256))
  local expected = hex(txn, hmac_pads(txn, signing_pads(txn, a.akid, a.secret, date), to_sign))
  if expected ~= fields.Signature:lower() then
    return refuse(txn, "InvalidSignatureException", MISMATCH)
  end
end

-- The whole check, the body being whole in the buffer.
local function verify(txn)
  local headers = txn.http:req_get_headers()
  local a = check_headers(txn, headers)
  if a == nil then return end
  local body = txn.sf:req_body() or ""
  local length = tonumber(first(headers, "content-length") or "0") or 0
  if length > MAX_BODY or length > #body then
    txn:set_var("txn.auth_status", 413)
    return refuse(txn, "ValidationError",
      "With SigV4 authentication on, a request body is verified up to " .. MAX_BODY .. " bytes.")
  end
  return check_signature(txn, headers, a, hex(txn, txn.c:sha2(body, 256)))
end

-- Before a body too large for the buffer goes to the relay.
local function verify_headers(txn)
  check_headers(txn, txn.http:req_get_headers())
end

-- On the relay's private frontend: the body's hash is the relay's (fail closed without one).
local function verify_relayed(txn)
  local headers = txn.http:req_get_headers()
  local a = check_headers(txn, headers)
  if a == nil then return end
  local payload = first(headers, PAYLOAD_HEADER)
  if payload == nil or #payload ~= 64 or payload:match("^%x+$") == nil then
    return refuse(txn, "InvalidSignatureException", MISMATCH)
  end
  return check_signature(txn, headers, a, payload:lower())
end

core.register_action("gs_sigv4", { "http-req" }, verify, 0)
core.register_action("gs_sigv4_headers", { "http-req" }, verify_headers, 0)
core.register_action("gs_sigv4_relayed", { "http-req" }, verify_relayed, 0)
"""  # noqa: E501
