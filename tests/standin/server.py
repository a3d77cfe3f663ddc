# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""HTTPS server, routing and the ARM conventions every resource provider here shares.

Handlers are plain functions registered with `@route(method, path template, action=...)`. The framework
does what ARM's front door does before a provider sees a request: authentication (bearer token),
api-version presence, role-based authorization of `action` over the request's scope (403
AuthorizationFailed with Azure's own wording), scripted faults, and the request log. Handlers raise
`ArmError` for 4xx answers and return `Response` objects.
"""
import email.utils
import json
import re
import socket
import ssl
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

from . import tokens
from .world import LoggedRequest

ROUTES = []


class ArmError(Exception):
    """An error answer. `network_style` uses the Network RP's unwrapped body ({"code","message","details"})."""

    def __init__(self, status, code, message, details=None, headers=None, network_style=False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details
        self.headers = headers or {}
        self.network_style = network_style

    def body(self):
        if self.network_style:
            return {'code': self.code, 'message': self.message, 'details': self.details or []}
        err = {'code': self.code, 'message': self.message}
        if self.details is not None:
            err['details'] = self.details
        return {'error': err}


def not_found(resource_type, name, resource_group):
    """ARM's 404 for a top-level resource, as real Azure words it."""
    return ArmError(404, 'ResourceNotFound',
                    "The Resource '{}/{}' under resource group '{}' was not found. For more details please go to "
                    "https://aka.ms/ARMResourceNotFoundFix".format(resource_type, name, resource_group))


def network_not_found(resource_id):
    """The Network RP's 404 for a child or related resource."""
    return ArmError(404, 'NotFound', 'Resource {} not found.'.format(resource_id), network_style=True)


class Response:
    def __init__(self, status=200, body=None, headers=None):
        self.status, self.body, self.headers = status, body, dict(headers or {})


class Route:
    def __init__(self, method, template, handler, action, scope_strip, auth):
        self.method = method
        self.template = template
        pattern = re.sub(r'\{(\w+)\*\}', r'(?P<\1>.+?)', template)   # {scope*}: any number of segments
        pattern = re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)', pattern)
        self.regex = re.compile('^' + pattern + '/?$', re.I)
        self.handler = handler
        self.action = action
        self.scope_strip = scope_strip
        self.auth = auth


def route(method, template, action=None, scope_strip=0, auth=True):
    """Register a handler. `action` is the RBAC action checked over the path's scope (minus `scope_strip`
    trailing segments: 1 for `/initiate`-style actions)."""
    def wrap(fn):
        ROUTES.append(Route(method, template, fn, action, scope_strip, auth))
        return fn
    return wrap


class Request:
    def __init__(self, server, method, path, query, headers, raw_body, params):
        self.server = server
        self.world = server.world
        self.method, self.path, self.query, self.headers = method, path, query, headers
        self.raw_body = raw_body
        self.params = params
        self.caller = None

    @property
    def base_url(self):
        return self.server.base_url

    @property
    def body(self):
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be '
                                                         'deserialized: not valid JSON.')

    def arg(self, name, default=None):
        """A query parameter, case-insensitively (ARM accepts `$expand` and `$Expand`)."""
        for key, value in self.query.items():
            if key.lower() == name.lower():
                return value
        return default

    @property
    def api_version(self):
        return self.arg('api-version')

    def authorize(self, action, scope):
        if not self.world.is_authorized(self.caller, action, scope):
            raise authorization_failed(self.caller, action, scope)

    def can(self, action, scope):
        return self.world.is_authorized(self.caller, action, scope)

    def validate(self, spec_name, operation_id, body=None):
        """Check the body against the swagger; a violation is recorded (tests fail on it) and refused."""
        from . import schema
        try:
            problems = schema.load(spec_name).validate_request(operation_id, self.body if body is None else body)
        except schema.SpecError:
            # The copied specs lack a few referenced files (e.g. applicationSecurityGroup.json): nothing to check.
            problems = []
        if problems:
            for problem in problems:
                self.world.schema_violations.append((self.method, self.path, problem))
            raise ArmError(400, 'InvalidRequestContent',
                           'The request content was invalid and could not be deserialized: ' + '; '.join(problems))

    def url(self, path, **query):
        """An absolute URL on this server (for nextLink, Azure-AsyncOperation, Location)."""
        text = self.base_url + quote(path)
        if query:
            text += '?' + '&'.join('{}={}'.format(k, quote(str(v), safe='')) for k, v in query.items())
        return text


def authorization_failed(ident, action, scope):
    return ArmError(403, 'AuthorizationFailed',
                    "The client '{}' with object id '{}' does not have authorization to perform action '{}' over "
                    "scope '{}' or the scope is invalid. If access was recently granted, please refresh your "
                    "credentials.".format(ident.client_id, ident.object_id, action, scope))


def paged(req, items, page_size=None):
    """One page of `items` in ARM's list shape, with `nextLink` when more remain (`$skiptoken` is an offset)."""
    size = page_size or req.world.page_size
    start = int(req.arg('$skiptoken', '0') or 0)
    body = {'value': items[start:start + size]}
    if start + size < len(items):
        query = {k: v for k, v in req.query.items() if k.lower() != '$skiptoken'}
        query['$skiptoken'] = start + size
        body['nextLink'] = req.url(req.path, **query)
    return Response(200, body)


def start_operation(req, location, on_done=None, kind='operations', resource=None, on_fail=None):
    """Begin a long-running operation; returns its id, its Azure-AsyncOperation URL and its Location URL.

    The operation answers InProgress for `world.lro_polls` polls, then runs `on_done` (if any) and answers
    Succeeded, as the Network RP does. It also completes by itself `world.lro_seconds` after it began, polled or
    not: Azure finishes an operation whether or not its client is still there to ask (a client killed mid-command,
    an answer lost on the way).

    `resource` (a resource id) is what the operation holds: while it is in flight, `busy_operation` names it, and
    the Network RP refuses every other write to that resource with 429 RetryableErrorDueToAnotherOperation.

    A request carrying a scripted 'lro_failed' fault starts an operation that ends Failed with the fault's code and
    message: `on_fail` (if any) runs instead of `on_done`.
    """
    op_id = str(uuid.uuid4())
    fault = getattr(req, 'lro_fault', None)
    req.world.operations[op_id] = {
        'status': 'InProgress', 'polls_left': req.world.lro_polls, 'on_done': on_done, 'on_fail': on_fail,
        'started': time.monotonic(), 'resource': resource.lower() if resource else None,
        'error': {'code': fault.code, 'message': fault.message} if fault else None}
    sub = req.params.get('subscription') or req.world.subscription_id
    base = '/subscriptions/{}/providers/Microsoft.Network/locations/{}/'.format(sub, location)
    async_url = req.url(base + 'operations/' + op_id, **{'api-version': req.api_version})
    location_url = req.url(base + 'operationResults/' + op_id, **{'api-version': req.api_version})
    return op_id, async_url, location_url


def _finish(op):
    """Complete an operation: Failed (its scripted error) or Succeeded, running what completion does."""
    if op['error'] is not None:
        if op['on_fail']:
            op['on_fail']()
        op['status'] = 'Failed'
    else:
        if op['on_done']:
            op['on_done']()
        op['status'] = 'Succeeded'


def settle_operations(world):
    """Complete every operation whose time is up (`world.lro_seconds`), whether or not anybody polls it."""
    with world.lock:
        now = time.monotonic()
        for op in world.operations.values():
            if op['status'] == 'InProgress' and now - op['started'] >= world.lro_seconds:
                _finish(op)


def busy_operation(world, resource_id):
    """The id of the operation in flight on `resource_id`, or None."""
    settle_operations(world)
    key = resource_id.lower()
    with world.lock:
        return next((op_id for op_id, op in world.operations.items()
                     if op['status'] == 'InProgress' and op['resource'] == key), None)


def poll_operation(world, op_id):
    """Advance an operation by one poll and return (status, error)."""
    settle_operations(world)
    with world.lock:
        op = world.operations.get(op_id)
        if op is None:
            return None, None
        if op['status'] == 'InProgress':
            if op['polls_left'] > 0:
                op['polls_left'] -= 1
            else:
                _finish(op)
        return op['status'], op['error'] if op['status'] == 'Failed' else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True  # without it every answer costs ~40 ms (Nagle + delayed ACK)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def date_time_string(self, timestamp=None):
        # The Date header follows Azure's clock, so clients that trust Azure's time see the moved clock.
        return email.utils.format_datetime(self.server.world.clock.now(), usegmt=True)

    def do_GET(self):
        self._serve('GET')

    def do_PUT(self):
        self._serve('PUT')

    def do_POST(self):
        self._serve('POST')

    def do_PATCH(self):
        self._serve('PATCH')

    def do_DELETE(self):
        self._serve('DELETE')

    def _serve(self, method):
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        world = self.server.world
        fault = None
        with world.lock:
            for candidate in world.faults:
                if candidate.matches(method, path):
                    candidate.times -= 1
                    candidate.hits += 1
                    fault = candidate
                    break
        if fault and fault.kind == 'drop':
            self._log(method, path, query, 0, None, raw)   # logged first: the client may look as soon as it fails
            self._drop()
            return
        if fault and fault.kind == 'delay':
            time.sleep(fault.delay)
            fault = None
        drop_answer = fault is not None and fault.kind == 'drop_after'
        lro_fault = fault if fault is not None and fault.kind == 'lro_failed' else None
        if drop_answer or lro_fault:
            fault = None  # served normally: the fault strikes after the handler ran
        req = None
        try:
            if fault:
                headers = {'Retry-After': str(fault.retry_after)} if fault.status in (429, 503) else {}
                raise ArmError(fault.status, fault.code, fault.message, headers=headers)
            matched, params, allowed = None, None, False
            for candidate in ROUTES:
                m = candidate.regex.match(path)
                if m:
                    allowed = True
                    if candidate.method == method:
                        matched, params = candidate, m.groupdict()
                        break
            if matched is None:
                if allowed:
                    raise ArmError(405, 'MethodNotAllowed', 'The requested resource does not support http method '
                                                            "'{}'.".format(method))
                raise ArmError(404, 'InvalidResourceType' if path.startswith('/subscriptions') else 'NotFound',
                               "No route for '{} {}' in the local Azure stand-in.".format(method, path))
            req = Request(self.server, method, path, query, self.headers, raw, params)
            req.lro_fault = lro_fault
            if matched.auth:
                req.caller = self._authenticate()
                if path.startswith('/subscriptions') and not req.api_version:
                    raise ArmError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=)"
                                                                      " is required for all requests.")
                if matched.action:
                    scope = path.rstrip('/')
                    if matched.scope_strip:
                        scope = '/'.join(scope.split('/')[:-matched.scope_strip])
                    req.authorize(matched.action, scope)
            resp = matched.handler(req)
        except ArmError as err:
            resp = Response(err.status, err.body(), err.headers)
        except Exception:  # pylint: disable=broad-except
            traceback.print_exc()
            resp = Response(500, {'error': {'code': 'InternalServerError', 'message': 'The stand-in failed: '
                                            + traceback.format_exc().splitlines()[-1]}})
        if drop_answer:
            # Azure did what was asked; the answer is lost on the way (a proxy reset, a network blip).
            self._log(method, path, query, 0, req.caller if req else None, raw)
            self._drop()
            return
        self._log(method, path, query, resp.status, req.caller if req else None, raw)
        self._send(resp)

    def _drop(self):
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _authenticate(self):
        header = self.headers.get('Authorization', '')
        if not header.lower().startswith('bearer '):
            raise ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.",
                           headers={'WWW-Authenticate': 'Bearer authorization_uri="{}/{}", error="invalid_token"'
                                    .format(self.server.base_url, self.server.world.tenant_id)})
        claims = tokens.decode(header[7:].strip())
        ident = claims and self.server.world.identity_by_object_id(claims.get('oid', ''))
        if not ident or claims.get('exp', 0) < time.time():
            raise ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid or has expired.')
        return ident

    def _log(self, method, path, query, status, caller, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self.server.world.lock:
            self.server.world.requests.append(LoggedRequest(method, path, query, status,
                                                            caller.name if caller else '', body,
                                                            self.server.world.clock.now()))

    def _send(self, resp):
        if isinstance(resp.body, (dict, list)):
            payload = json.dumps(resp.body).encode()
            ctype = 'application/json; charset=utf-8'
        elif resp.body is None:
            payload, ctype = b'', None
        else:
            payload = resp.body.encode() if isinstance(resp.body, str) else resp.body
            ctype = resp.headers.pop('Content-Type', 'text/plain; charset=utf-8')
        self.send_response(resp.status)
        if ctype:
            self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(payload)))
        self.send_header('x-ms-request-id', str(uuid.uuid4()))
        self.send_header('x-ms-correlation-request-id', str(uuid.uuid4()))
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, world, certfile, keyfile, port=0):
        super().__init__(('127.0.0.1', port), _Handler)
        self.world = world
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.base_url = 'https://127.0.0.1:{}'.format(self.server_address[1])
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, name='azure-standin', daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
