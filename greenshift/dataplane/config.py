"""HAProxy configuration for the SageMaker runtime, rendered from a DesiredState (pure).

The frontend implements `POST /endpoints/{EndpointName}/invocations`:
1. unknown endpoint -> 400 ValidationError, body over 6 MB -> 413 ValidationError;
2. route = slots[endpoint] (or slots[endpoint/variant] with X-Amzn-SageMaker-Target-Variant);
3. a route that is a backend name (a slot all of whose traffic goes to one fleet: the common
   case, one fleet and no deployment in flight) is that backend; otherwise it is the slot's
   base key (slot * RESOLUTION) and backend = picks[base + pick_key(n)], n = the slot's request
   counter (a
   stick-table gpc0; routing.py explains why), no pick -> 503 ServiceUnavailable;
4. the path becomes /invocations; answers get x-Amzn-Invoked-Production-Variant; a model answer
   of 4xx/5xx becomes 424 ModelError with OriginalStatusCode and OriginalMessage.
Error bodies are rest-json as botocore's sagemaker-runtime client parses them (`x-amzn-ErrorType`
header for the code, `message` in the body).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from greenshift.dataplane.desired import BACKEND_PREFIX, Backend, DesiredState
from greenshift.dataplane.routing import RESOLUTION, STRIDE
from greenshift.dataplane.sigv4 import (
    LUA_ACTION,
    LUA_HEADERS_ACTION,
    LUA_RELAYED_ACTION,
    PAYLOAD_HEADER,
    SIGV4_BUFFER_BYTES,
    SIGV4_MAX_BODY_BYTES,
)

MAX_BODY_BYTES = 6_291_456  # SEMANTICS.md 1: 6 MB
# HAProxy's buffer (without SigV4; sigv4.py sizes its own): the largest request, headers + body,
# read whole before a server is chosen, so the largest one the retry can replay when its
# instance is killed; larger bodies stream to the model and are not retried. HAProxy's default
# 16 KB is kept: it replays requests of bodies up to ~14 KB (JSON rows, embeddings). An 8 KB
# buffer costs about 13 % less CPU per request (the L7 retry copies a whole buffer whatever the
# request's size: 18.4 against 21.1 us, docs/benchmarks.md) but would stop retrying bodies
# between ~6 and ~14 KB; Greenshift's throughput is above 90 % of bare HAProxy's without it.
BUFFER_BYTES = 16_384
# With data capture on: a capture record (both bodies in base64, built in one HAProxy variable)
# is bounded by the buffer, and 16 KB is what capture was built for.
CAPTURE_BUFFER_BYTES = 16_384
# The stats page and the Prometheus exporter name every endpoint, variant and fleet and carry no
# authentication: loopback only, whatever --host says (issue 14 item 2). The metrics process
# reaches them there (same host, or the data plane's network namespace in docker-compose.yml).
STATS_HOST = "127.0.0.1"
UNAVAILABLE_BACKEND = "gs_unavailable"
RELAY_BACKEND = "gs_sigv4_relay"
STREAM_RELAY_BACKEND = "gs_stream_relay"
SUCCESSOR_PREFIX = "gs_successor_"  # + a runtime frontend's name (handover_rules says why)
NO_ROUTE = "none"  # the slots map's answer for a key it does not hold
COUNTER_TABLE = "gs_counter"
VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
LOG_TAG = "GS2"
LOG_RING = "gs_access"
LOG_RING_BYTES = 4 << 20  # ~10 s of lines at 10k req/s while the collector is stalled


@dataclass(frozen=True)
class Paths:
    """Files of the data plane under <home>/dataplane/."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "haproxy.cfg"

    @property
    def admin_socket(self) -> Path:
        return self.root / "admin.sock"

    @property
    def master_socket(self) -> Path:
        return self.root / "master.sock"

    @property
    def pid_file(self) -> Path:
        return self.root / "haproxy.pid"

    @property
    def slots_map(self) -> Path:
        return self.root / "slots.map"

    @property
    def picks_map(self) -> Path:
        return self.root / "picks.map"

    @property
    def log_socket(self) -> Path:
        return self.root / "access.sock"

    @property
    def sigv4_lua(self) -> Path:
        return self.root / "sigv4.lua"

    @property
    def relay_socket(self) -> Path:
        """The body-hash relay's (relay.py): large signed bodies go there."""
        return self.root / "relay.sock"

    @property
    def relayed_socket(self) -> Path:
        """HAProxy's private frontend: the relay sends the bodies back there, with their hash."""
        return self.root / "relayed.sock"

    @property
    def stream_relay_socket(self) -> Path:
        """The stream relay's (relay.py): every response stream goes there once authenticated."""
        return self.root / "stream-relay.sock"

    @property
    def streamed_socket(self) -> Path:
        """HAProxy's private frontend that routes the streams the stream relay sends back."""
        return self.root / "streamed.sock"

    @property
    def capture_socket(self) -> Path:
        return self.root / "capture.sock"


@dataclass(frozen=True)
class Listen:
    host: str
    runtime_port: int
    stats_port: int
    account_id: str
    access_log: bool = False  # log each request to Paths.log_socket (the metrics collector's)
    sigv4: bool = (
        False  # require SigV4 on invocations (Paths.sigv4_lua, greenshift.dataplane.sigv4)
    )


def slot_routes(state: DesiredState) -> list[tuple[str, str]]:
    """The slots map: key -> the one backend that takes all of the slot's traffic, or else the
    slot's first pick key (slot x RESOLUTION, to which the request's pick_key is added).

    A one-backend slot needs no request counter and no picks lookup: those rules are the most
    per-request work of the routing (bench/dataplane_bench.py), and most endpoints most of the
    time have one fleet. Changes with the picks, through the runtime API."""
    solo: dict[int, str] = {}
    for lo, hi, name in state.picks:
        if hi - lo == RESOLUTION - 1 and lo % RESOLUTION == 0:
            solo[lo // RESOLUTION] = name
    return [(key, solo.get(slot, str(slot * RESOLUTION))) for key, slot in state.slots]


def render_slots(state: DesiredState) -> str:
    return "".join(f"{key} {route}\n" for key, route in slot_routes(state))


def render_picks(state: DesiredState) -> str:
    return "".join(f"{lo}:{hi} {name}\n" for lo, hi, name in state.picks)


# Health of a server as HAProxy sees it (the admin state, maint/ready, stays the controller's):
# a refused or reset connection marks it down at once (`observe layer4`), so the retry of that
# request is redispatched to another server, or to a backup of the variant when it was the
# fleet's only one; `GET /ping` every CHECK_INTER brings it back by itself once it answers again
# (every DOWN_INTER while down). `fall 3`: one slow check under load does not take it out.
CHECK_OPTIONS = (
    "check inter 2s downinter 500ms fastinter 500ms rise 1 fall 3 "
    "observe layer4 error-limit 1 on-error mark-down"
)


def server_line(server_name: str, host: str, port: int, enabled: bool, backup: bool = False) -> str:
    """Options shared by config servers and `add server` (dynamic servers do not inherit
    default-server, so everything is spelled out). A dynamic server's checks start only with
    `enable health` (runtime.py's add_server does it)."""
    state = "" if enabled else " disabled"
    role = " backup" if backup else ""
    return f"{server_name} {host}:{port} weight 1 pool-max-conn -1{state}{role} {CHECK_OPTIONS}"


def _json_error(status: int, code: str, message_fmt: str) -> str:
    """An `http-request return` clause answering a rest-json error."""
    body = '{"message":"' + message_fmt + '"}'
    return (
        f"return status {status} content-type application/json "
        f"lf-string '{body}' hdr x-amzn-ErrorType {code}"
    )


def _backend(b: Backend) -> str:
    lines = [
        f"backend {b.name}",
        f"  balance {b.balance}",
        f"  http-request set-var(txn.variant) str({b.variant})",
        # A literal per backend: no per-response sample fetch (errors get theirs in `return`).
        f"  http-response set-header {VARIANT_HEADER} {b.variant}",
        # Backups (desired.py says why): all of them share the load once no own server is up.
        "  option allbackups",
        "  option httpchk GET /ping",
        "  timeout check 2s",
    ]
    lines += capture_rules(b)
    lines += [
        f"  server {server_line(s.name, s.host, s.port, s.enabled, s.backup)}" for s in b.servers
    ]
    return "\n".join(lines) + "\n"


# --- data capture (greenshift/capture): its own block, only in backends of capturing fleets ---
CAPTURE_LUA = Path(__file__).with_name("capture.lua")
# A body is captured from what HAProxy holds of it in one buffer (`option http-buffer-request`,
# `wait-for-body`), and base64 into a variable must fit one buffer too (16 KB by default: 12 KB
# of body). Larger bodies are captured cut to this many bytes and the record says so: the line
# carries each body's declared size next to it (greenshift.capture.rules, `truncated`).
CAPTURE_BODY_BYTES = 12_000


def capture_rules(b: Backend) -> list[str]:
    """Sample into txn.gscap and keep what the record needs; capture.lua does the rest. Output
    is read with `wait-for-body` (sampled requests only, never a stream's event stream)."""
    rule = b.capture
    if rule is None or rule.per_10000 == 0:
        return []
    on = "{ var(txn.gscap) -m found }"
    stream = "{ var(txn.gsstream) -m found }"
    plain = f"!{stream}"
    cut = f"bytes(0,{CAPTURE_BODY_BYTES}),base64"
    lines = [
        f"  http-request set-var(txn.gscap) int(1) if {{ rand(10000) lt {rule.per_10000} }}",
        f"  http-request set-var(txn.gsstream) int(1) if {on} "
        f"{{ req.hdr({STREAM_HEADER}) -m str {STREAM_SEGMENT} }}",
    ]
    # What the record needs of the request, in one variable (one rule: each rule is paid per
    # captured request; the request's headers are gone by the time the answer comes).
    request = (
        "%[req.hdr(content-type),base64]\\t%[req.hdr(x-amzn-sagemaker-custom-attributes),base64]"
        "\\t%[req.hdr(x-amzn-sagemaker-inference-id),base64]\\t"
        + ("%[req.body_size]" if rule.capture_input else "-")
    )
    lines.append(f'  http-request set-var-fmt(txn.gsreq) "{request}" if {on}')
    if rule.capture_input:
        lines.append(f"  http-request set-var(txn.gscin) req.body,{cut} if {on}")
    if rule.capture_output:
        lines += [
            f"  http-response wait-for-body time 5s if {on} {plain}",
            f"  http-response set-var(txn.gscout) res.body,{cut} if {on} {plain}",
        ]
    # The fixed fields built natively; the bodies stay in their own variables (each is bounded
    # by one buffer, a joined line would be bounded by one for the whole record). A size field
    # is "-" when that body is not captured (a side off, or a stream's answer).
    line = "%b\\t%[date(0,ms)]\\t%[status]\\t%[var(txn.gsreq)]\\t%[res.hdr(content-type),base64]\\t"
    if rule.capture_output:
        lines += [
            f'  http-response set-var-fmt(txn.gsline) "{line}%[res.body_size]\\t" if {on} {plain}',
            f'  http-response set-var-fmt(txn.gsline) "{line}-\\t" if {on} {stream}',
        ]
    else:
        lines.append(f'  http-response set-var-fmt(txn.gsline) "{line}-\\t" if {on}')
    # capture.lua's converters (three calls in this order: capture.lua says why converters).
    lines.append(f"  http-response set-var(txn.gsq) var(txn.gsline),lua.gs_line if {on}")
    if rule.capture_input:
        lines.append(f"  http-response set-var(txn.gsq) var(txn.gscin,-),lua.gs_in if {on}")
    lines.append(f"  http-response set-var(txn.gsq) var(txn.gscout,-),lua.gs_out if {on}")
    return lines


def capture_global(state: DesiredState, paths: Paths) -> str:
    if not any(b.capture is not None for b in state.backends):
        return ""
    return (
        f"  setenv GS_CAPTURE_SOCKET {paths.capture_socket}\n  lua-load-per-thread {CAPTURE_LUA}\n"
    )


# InvokeEndpointWithResponseStream (`.../invocations-response-stream`) takes the same route as
# InvokeEndpoint (slots, picks, target variant, retries, ModelError, counters and access log:
# metrics and alarms count it like any invocation). One rule, with no condition, tells the
# instance which one it is: STREAM_HEADER carries the operation's last path segment
# (`invocations` or `invocations-response-stream`), replacing whatever a client sent; the model
# server answers the second with an AWS event stream (fleet/serving/server.py frames it, so the
# first part leaves the instance as soon as the model yields it), reading the API's
# `X-Amzn-SageMaker-Accept` as the Accept; a container answers it plain, as SageMaker's
# container contract says, and the stream relay frames it (relay.py, `needs_framing`), so
# nothing here depends on which runtime serves a fleet. One unconditional rule because every
# rule is paid by every plain invocation too (bench/capture_bench.py --callgrind measures it).
STREAM_HEADER = "X-Greenshift-Response-Stream"
STREAM_SEGMENT = "invocations-response-stream"
# Without it HAProxy holds a small chunk back (MSG_MORE) expecting more: a streamed part would
# wait for the next one, or ~200 ms (measured: time to first part 219 ms instead of ~1 ms).
STREAM_FRONTEND_OPTIONS = "  option http-no-delay\n"


def response_stream_rules() -> str:
    return f"  http-request set-header {STREAM_HEADER} %[path,field(4,/)]\n"


def _plain_buffer(state: DesiredState) -> int:
    """The buffer without SigV4: the capture's when a fleet captures, else the retry's."""
    capturing = any(b.capture is not None for b in state.backends)
    return CAPTURE_BUFFER_BYTES if capturing else BUFFER_BYTES


# A reload leaves the old worker each idle keep-alive connection until it has answered one more
# request on it (`option idle-close-on-response`: no client has a connection closed under a
# request it is sending). That answer must not come from the old routing: an endpoint the
# client was just told is InService would be "not found", a fleet just retired would be asked.
# So a worker that is stopping routes nothing itself: it hands each request, untouched, to its
# successor through the frontend's own address (the new worker owns that socket now) and
# passes the answer back, unmapped and unlogged (the successor maps and logs it, once).
# Decided once, when the request arrives, and kept in txn.handover: `stopping` turns true under
# a request already routed here, whose answer must still be mapped (a model's 500 becomes the
# ModelError 424) and whose later rules must agree with the earlier ones.
def handover_rules() -> str:
    return (
        "  http-request set-var(txn.handover) int(1) if { stopping }\n"
        "  acl handover var(txn.handover) -m found\n"
        "  http-request set-log-level silent if handover\n"
    )


def connect_host(bind_host: str) -> str:
    """Where to connect to reach a listener bound to `bind_host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind_host, bind_host)


def render(state: DesiredState, paths: Paths, listen: Listen) -> str:
    """The whole haproxy.cfg; the map files are rendered by render_slots / render_picks."""
    not_found = _json_error(
        400,
        "ValidationError",
        f"Endpoint %[var(txn.ep),json(utf8s)] of account {listen.account_id} not found.",
    )
    bad_variant = _json_error(
        400,
        "ValidationError",
        "Variant %[var(txn.tv),json(utf8s)] not found for endpoint %[var(txn.ep),json(utf8s)].",
    )
    too_big = _json_error(
        413,
        "ValidationError",
        f"Request body exceeds the maximum of {MAX_BODY_BYTES} bytes.",
    )
    # HAProxy streams a chunked body without knowing its size, so the 6 MB limit could not be
    # enforced on one: a body must declare its Content-Length (boto3 and the AWS CLI always do).
    length_required = _json_error(
        411,
        "ValidationError",
        f"A request body must have a Content-Length (at most {MAX_BODY_BYTES} bytes); "
        "chunked transfer encoding is not accepted.",
    )
    no_route = _json_error(404, "UnknownOperationException", "Unknown operation.")
    model_error = (
        "return status 424 content-type application/json "
        'lf-string \'{"message":"Received error (%[var(txn.ostatus)]) from model with '
        'message \\"%[var(txn.obody)]\\".","OriginalStatusCode":%[var(txn.ostatus)],'
        '"OriginalMessage":"%[var(txn.obody)]"}\' '
        f"hdr x-amzn-ErrorType ModelError hdr {VARIANT_HEADER} %[var(txn.variant)]"
    )
    unavailable = _json_error(
        503, "ServiceUnavailable", "No healthy instance is available to serve the request."
    )
    # Access log into an in-memory ring, forwarded over one stream connection per worker to the
    # collector (metrics/collector.py says why not datagrams); only the fields it reads.
    log_line = f"  log ring@{LOG_RING} len 2048 format raw local0\n" if listen.access_log else ""
    log_format = (
        f'  log-format "{LOG_TAG} %b %ST %Tr %Ta %[var(txn.ostatus)] %[var(txn.variant)] '
        '%[var(txn.ep)]"\n'
        if listen.access_log
        else ""
    )
    ring = (
        f"\nring {LOG_RING}\n  format raw\n  maxlen 2048\n  size {LOG_RING_BYTES}\n"
        "  timeout connect 2s\n  timeout server 10s\n"
        f"  server collector unix@{paths.log_socket}\n"
        if listen.access_log
        else ""
    )
    sigv4_global = (
        f"  lua-load {paths.sigv4_lua}\n  tune.bufsize {SIGV4_BUFFER_BYTES}\n"
        # Large buffers must stay in the thread's pool cache, not go back to malloc each time.
        f"  tune.memory.hot-size {SIGV4_BUFFER_BYTES * 64}\n  no-memory-trimming\n"
        if listen.sigv4
        else f"  tune.bufsize {_plain_buffer(state)}\n"
    )
    auth_error = (
        "content-type application/json "
        'lf-string \'{"message":"%[var(txn.auth_msg),json(utf8s)]"}\' '
        "hdr x-amzn-ErrorType %[var(txn.auth_code)]"
    )
    refused = (
        f"  http-request return status 403 {auth_error} if {{ var(txn.auth_code) -m found }}\n"
    )
    # With SigV4 on, a body the buffer cannot hold goes to the body-hash relay (sigv4.py says
    # why) once the checks that need no body passed; the relay sends it back, with its hash, to
    # the private frontend runtime_relayed. Every response stream, once authenticated, goes to
    # the stream relay, which sends it back to the private frontend runtime_streamed and ends a
    # stream the model's side broke with SageMaker's StreamBroken event (relay.py). A frontend
    # neither routes, logs nor maps the answer of a request it relays: the private one does, once.
    sigv4_check = (
        f"  acl large req.hdr_val(content-length) gt {SIGV4_MAX_BODY_BYTES}\n"
        f"  http-request lua.{LUA_ACTION} if !large\n"
        f"  http-request lua.{LUA_HEADERS_ACTION} if large\n"
        f"  http-request return status 413 {auth_error}"
        " if { var(txn.auth_status) -m int eq 413 }\n"
        f"{refused}"
        "  http-request set-var(txn.relay) int(1) if large\n"
    )
    relayed_check = (
        f"  http-request lua.{LUA_RELAYED_ACTION}\n{refused}"
        # kept for a successor: its relayed frontend reads the hash again (handover_rules)
        f"  http-request del-header {PAYLOAD_HEADER} if !handover\n"
    )
    to_stream_relay = (
        f"  http-request set-var(txn.relay) int(2) if {{ path_end /{STREAM_SEGMENT} }} !relayed\n"
        "  http-request set-log-level silent if relayed\n"
    )

    def runtime_frontend(name: str, bind: str, auth: str, relays: bool) -> str:
        # `!handover` on every rule whose answer depends on the routing or that would rewrite
        # what the successor must receive (handover_rules says why); `!relayed` as well in a
        # frontend that relays (the private frontend it relays to does them).
        skip = " !relayed !handover" if relays else " !handover"
        relaying = (
            f"  acl relayed var(txn.relay) -m found\n{auth}{to_stream_relay}" if relays else auth
        )
        to_relay = (
            (f"  use_backend {RELAY_BACKEND} if {{ var(txn.relay) -m int eq 1 }}\n" * listen.sigv4)
            + f"  use_backend {STREAM_RELAY_BACKEND} if {{ var(txn.relay) -m int eq 2 }}\n"
            if relays
            else ""
        )
        return f"""\
frontend {name}
  bind {bind}
{log_format}{STREAM_FRONTEND_OPTIONS}{handover_rules()}  acl invocation path_reg ^/endpoints/[^/]+/invocations(-response-stream)?$
  http-request {no_route} if !invocation || !METH_POST
{relaying}{response_stream_rules()}  http-request set-var(txn.ep) path,field(3,/)
  http-request set-var(txn.route) var(txn.ep),map_str({paths.slots_map},{NO_ROUTE})
  http-request {not_found} if {{ var(txn.route) -m str {NO_ROUTE} }} !handover
  http-request {too_big} if {{ req.hdr_val(content-length) gt {MAX_BODY_BYTES} }}
  http-request {length_required} if {{ req.hdr(transfer-encoding) -m found }}
  http-request set-var(txn.tv) req.hdr(X-Amzn-SageMaker-Target-Variant)
  http-request set-var(txn.route) var(txn.ep),concat(/,txn.tv),map_str({paths.slots_map},{NO_ROUTE}) if {{ var(txn.tv) -m found }}
  http-request {bad_variant} if {{ var(txn.route) -m str {NO_ROUTE} }} !handover
  acl solo var(txn.route) -m beg {BACKEND_PREFIX}
  http-request track-sc0 var(txn.route) table {COUNTER_TABLE} if !solo{skip}
  http-request set-var(txn.key) sc_inc_gpc0(0),mul({STRIDE}),mod({RESOLUTION}),add(txn.route) if !solo{skip}
  http-request set-uri /invocations if{skip}
  http-response wait-for-body time 5s if {{ status ge 400 }}{skip}
  http-response set-var(txn.ostatus) status if {{ status ge 400 }}{skip}
  http-response set-var(txn.obody) res.body,json(utf8s) if {{ status ge 400 }}{skip}
  http-response {model_error} if {{ status ge 400 }}{skip}
  use_backend {SUCCESSOR_PREFIX}{name} if handover
{to_relay}  use_backend %[var(txn.route)] if solo
  use_backend %[var(txn.key),map_int({paths.picks_map},{UNAVAILABLE_BACKEND})]
  default_backend {UNAVAILABLE_BACKEND}

"""  # noqa: E501

    public = f"{listen.host}:{listen.runtime_port}"
    successors = {
        "runtime": f"{connect_host(listen.host)}:{listen.runtime_port}",
        "runtime_streamed": f"unix@{paths.streamed_socket}",
    }
    private = "mode 600"
    if listen.sigv4:
        frontends = runtime_frontend("runtime", public, sigv4_check, relays=True)
        frontends += runtime_frontend(
            "runtime_relayed", f"unix@{paths.relayed_socket} {private}", relayed_check, True
        )
        successors["runtime_relayed"] = f"unix@{paths.relayed_socket}"
        relay_backend = f"\nbackend {RELAY_BACKEND}\n  server relay unix@{paths.relay_socket}\n"
    else:
        frontends = runtime_frontend("runtime", public, "", relays=True)
        relay_backend = ""
    frontends += runtime_frontend(
        "runtime_streamed", f"unix@{paths.streamed_socket} {private}", "", relays=False
    )
    relay_backend += (
        f"\nbackend {STREAM_RELAY_BACKEND}\n  server relay unix@{paths.stream_relay_socket}\n"
    )
    relay_backend += "".join(
        f"\nbackend {SUCCESSOR_PREFIX}{name}\n  server successor {address}\n"
        for name, address in successors.items()
    )
    head = f"""\
# Generated by greenshift.dataplane.config: do not edit, the router controller rewrites it.
global
{sigv4_global}  stats socket {paths.admin_socket} mode 600 level admin expose-fd listeners
  stats timeout 30s
  # In-flight requests of an old worker get at most 70 s to finish after a reload.
  hard-stop-after 70s
  maxconn 4096
{capture_global(state, paths)}{log_line}{ring}
defaults
  mode http
  log global
  option dontlognull
  timeout connect 3s
  timeout client 70s
  timeout server 65s
  timeout http-request 70s
  timeout http-keep-alive 60s
  timeout queue 10s
  option http-keep-alive
  # Reload without client errors: the old worker keeps idle keep-alive connections until it
  # answers one more request (with Connection: close) instead of closing them under a client
  # that may be sending on them.
  option idle-close-on-response
  http-reuse always
  # A refused connection (an instance that just died), or a connection closed with no answer
  # (an instance killed while it handled the request), is retried on another server: no
  # request is lost to a crashed instance. Only these two: a slow or failing model is not
  # retried. L7 `retry-on` keeps a copy of each request (CPU cost: see docs/benchmarks.md).
  option redispatch 1
  # Wait for the whole body (up to one buffer) before choosing a server: a request that was
  # streamed (headers first, body after) cannot be retried, and clients often send the body in
  # a second write. Bodies larger than a buffer still stream, and cannot be retried.
  option http-buffer-request
  retries 3
  retry-on conn-failure empty-response
  http-error status 503 content-type application/json string '{{"message":"No healthy instance is available to serve the request."}}' hdr x-amzn-ErrorType ServiceUnavailable
  http-error status 502 content-type application/json string '{{"message":"The model closed the connection without an answer."}}' hdr x-amzn-ErrorType InternalFailure
  http-error status 504 content-type application/json string '{{"message":"The model did not answer in time."}}' hdr x-amzn-ErrorType ModelError

frontend stats
  bind {STATS_HOST}:{listen.stats_port}
  no log
  http-request use-service prometheus-exporter if {{ path /metrics }}
  stats enable
  stats uri /
  stats refresh 5s

{frontends}backend {COUNTER_TABLE}
  stick-table type integer size 64k expire 24h store gpc0

backend {UNAVAILABLE_BACKEND}
  http-request {unavailable}
{relay_backend}"""  # noqa: E501
    return head + "".join("\n" + _backend(b) for b in state.backends)
