# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure Resource Graph: `POST /providers/Microsoft.ResourceGraph/resources`, over the world's resources.

Sources: the 2021-03-01 swagger (reference/azure-rest-api-specs/resourcegraph/2021-03-01/resourcegraph.json,
which every request body is checked against), the recordings of az's resource-graph extension (Azure/azure-cli-
extensions, src/resource-graph/.../recordings: test_query_error.yaml, test_skip_token_query.yaml,
test_management_groups_query.yaml), Azure's "Guidance for throttled requests in Azure Resource Graph", and the
error bodies users posted (quoted in reference/SOURCES.md). What they do not settle is marked *unconfirmed*, and
there the harsher behaviour was chosen.

The request
- api-version 2021-03-01, 2022-10-01 or 2024-04-01 (the GA versions whose swagger holds this operation and whose
  default `resultFormat` is objectArray); another one is refused as ARM refuses an unknown version (400
  NoRegisteredProviderFound), a missing one with MissingApiVersionParameter. The body is checked against the
  2021-03-01 swagger, whatever the version (so 2022-10-01's `authorizationScopeFilter` is refused: harsher).
- Scope: `subscriptions` (at most 1000), or `managementGroups` (at most 10), or neither (every subscription the
  caller can access: a tenant query). Both at once is refused (*unconfirmed*). A subscription the caller cannot
  access (or that does not exist) is left out silently, and only when none is left is the query refused, 400
  BadRequest with detail NoValidSubscriptionsInQueryRequest "There must be at least one subscription that is
  eligible to contain resources. Given: '…'." (the wording users quote; the silent drop was measured by a third
  party, see SOURCES.md: *unconfirmed* here). A management group that does not exist, or that the caller has no
  role at, above or below, is refused with ManagementGroupsContainInvalidIds "The provided management groups
  must be valid. Given: '…'." (as users quote it; refusing an invisible group alike is *unconfirmed*). A
  management group scope is every subscription in it or below it (`world.add_management_group`; the tenant root
  group, named by the tenant id, holds everything).
- Rows: a caller sees only the resources it may read: the RBAC action `<resource type>/read` over the resource's
  id (`world.is_authorized`), so a Reader of one resource group sees that group's rows only.
- Options: `$top` (default 100; the swagger caps it at 1000), `$skip`, `$skipToken` and `resultFormat`
  (`objectArray`, or `table`: `{"columns": [{"name", "type"}], "rows": [[...]]}`); `allowPartialScopes` is
  accepted and changes nothing (it matters only beyond Azure's subscription limits). `facets` are not computed:
  a request with any is refused (the stand-in's limit).

Paging
- The answer is `{totalRecords, count, resultTruncated ("true"/"false"), $skipToken?, data, facets: []}`. When
  rows remain after the page and the results carry the `id` column, the answer has a `$skipToken` and
  `resultTruncated` "false"; without `id` it has no token and `resultTruncated` "true" (Azure's documented rule:
  paging needs the id). The token is opaque (base64 of JSON, as the recording's), carries the next offset and
  page size, and is bound to the query text and scope: sent with another query or scope it is refused (400
  BadRequest, detail InvalidSkipToken: code and wording *unconfirmed*). With a token, `$top` and `$skip` still
  override the page size and offset (the swagger says so).
- Without `order by`, rows come in an order of the stand-in's own, stable from page to page but neither by id
  nor by insertion (a client must not rely on any order Azure does not promise).

The Kusto the stand-in evaluates (and nothing else)
- Table `Resources` (any case; a query that starts with an operator means Resources, as in Azure); operators
  `where`, `project` (plain column names) and `order by` (columns, `asc`/`desc`, default desc as in Kusto); in
  predicates `==`, `!=`, `=~`, `!~`, `in (…)`, `in~ (…)`, `contains`, `startswith`, `and`, `or`, `not(…)`,
  parentheses; functions `tostring(…)` and `tolower(…)`; columns with dotted paths into dynamic columns
  (`properties.securityRules`); string literals in single or double quotes (backslash escapes).
- Column names are case-sensitive, as in Kusto: `resourcegroup` is not `resourceGroup`. A path into a string
  column, an unknown column, another table, operator or function, `limit`/`take`, `mv-expand`, `join`, numbers
  and a syntax error are refused with Resource Graph's error shape (as recorded: 400, `{"error": {"code":
  "BadRequest", "message": "Please provide below info when asking for support: …", "details": [{"code":
  "InvalidQuery", …}, {…}]}}`), the second detail saying which part was not understood, and where (`line`,
  `characterPositionInLine`, `token`, as the recorded ParserFailure does).
- String operators see a dynamic value as `tostring` does: a string as itself, a missing value as "", an object
  or array as its compact JSON text. `==`, `!=` and `in` are case-sensitive; `=~`, `!~`, `in~`, `contains` and
  `startswith` are not (as in Kusto). That a missing property compares as "" (so `!=` holds) is *unconfirmed*.

Rows (`Resources`)
- Every top-level resource of a subscription except resource groups (they are in ResourceContainers) and
  Defender's JIT policies (in no documented table): `id` (as ARM writes it), `name`, `type` and `resourceGroup`
  in lower case, `tenantId`, `kind` (""), `location`, `subscriptionId`, `managedBy` (""), `sku`, `plan`,
  `properties` as a GET shows them (an NSG with `securityRules`, `defaultSecurityRules` and the NICs and subnets
  it is attached to; a NIC with its `virtualMachine` and each public IP as `{id}` only), `tags`, `identity`,
  `zones`, `extendedLocation` (null when the resource has none).

Quota
- Per caller, `world.graph_quota` queries (default 15) per `world.graph_window` seconds (default 5.0, real time:
  the window starts with the caller's first query in it). Every answer carries `x-ms-user-quota-remaining` and
  `x-ms-user-quota-resets-after` (hh:mm:ss, rounded up); errors count, as the recorded 400 shows its quota spent.
  Over the quota: 429, `Retry-After` (whole seconds until the window ends), and the RateLimiting body users
  posted. Throttled requests do not count.

Lag
- Resource Graph's data lags ARM by seconds to minutes. `freeze(world)` makes it answer from a deep copy of the
  resources taken then (what a write through ARM changes afterwards is not seen), until `thaw(world)`: tests show
  with it that writers read fresh from ARM rather than trusting a query's rows. Unfrozen, it sees the world as
  ARM reads do (Defender's expiry and finished operations applied first). From a shell: `POST /_standin/graph-lag`
  with `{"frozen": true}` or `{"frozen": false}`.
"""
import base64
import copy
import hashlib
import json
import math
import re
import threading
import time
import uuid

from .server import ArmError, Response, route

API_VERSIONS = ('2021-03-01', '2022-10-01', '2024-04-01')
MAX_SUBSCRIPTIONS = 1000
MAX_MANAGEMENT_GROUPS = 10
DEFAULT_TOP = 100
MAX_TOP = 1000   # the swagger's maximum for $top, enforced by the body check

# The columns of the Resources table, and which of them are dynamic (may be walked with a dotted path).
STRING_COLUMNS = ('id', 'name', 'type', 'tenantId', 'kind', 'location', 'resourceGroup', 'subscriptionId',
                  'managedBy')
DYNAMIC_COLUMNS = ('sku', 'plan', 'properties', 'tags', 'identity', 'zones', 'extendedLocation')
COLUMNS = ('id', 'name', 'type', 'tenantId', 'kind', 'location', 'resourceGroup', 'subscriptionId', 'managedBy',
           'sku', 'plan', 'properties', 'tags', 'identity', 'zones', 'extendedLocation')
# Tables Resource Graph has that the stand-in does not serve (named in the refusal).
OTHER_TABLES = ('resourcecontainers', 'securityresources', 'advisorresources', 'alertsmanagementresources',
                'healthresources', 'networkresources', 'policyresources', 'authorizationresources',
                'resourcechanges', 'extendedlocationresources', 'guestconfigurationresources',
                'kubernetesconfigurationresources', 'maintenanceresources', 'patchassessmentresources',
                'patchinstallationresources', 'servicehealthresources', 'desktopvirtualizationresources')
# Words that start a query with an operator (the table is then Resources) rather than naming a table.
OPERATOR_WORDS = ('where', 'project', 'order', 'sort', 'limit', 'take', 'extend', 'summarize', 'join', 'mv-expand',
                  'top', 'distinct', 'count', 'union', 'project-away', 'project-keep', 'parse', 'lookup')
# Kusto's other predicates, named when refused.
OTHER_OPERATORS = ('has', 'has_cs', 'contains_cs', 'endswith', 'matches', 'startswith_cs', 'between', 'hasprefix',
                   'hassuffix', 'has_any', 'has_all', 'like', 'endswith_cs', 'notcontains')
STRING_OPERATORS = ('==', '!=', '=~', '!~', 'contains', 'startswith')
FUNCTIONS = ('tostring', 'tolower')
INVALID_QUERY = {'code': 'InvalidQuery', 'message': 'Query is invalid. Please refer to the documentation for the '
                                                    'Azure Resource Graph service and fix the error before retrying.'}
THROTTLED = {'code': 'RateLimiting',
             'message': 'Client application has been throttled and should not attempt to repeat the request until an '
                        'amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.'}


# -- state: lag and quota -----------------------------------------------------------------------------------
def state(world):
    """Resource Graph's state in `world.extensions['graph']`: `frozen` (None, or the resources it answers from) and
    `quota` (caller object id -> [window start (monotonic seconds), queries counted])."""
    with world.lock:
        return world.extensions.setdefault('graph', {'frozen': None, 'quota': {}, 'quota_lock': threading.Lock()})


def freeze(world):
    """From now on Resource Graph answers from a copy of the resources as they are now (its lag behind ARM)."""
    _settle(world)
    with world.lock:
        state(world)['frozen'] = copy.deepcopy(world.resources)


def thaw(world):
    """Resource Graph sees the world as it is again."""
    with world.lock:
        state(world)['frozen'] = None


def _settle(world):
    """What ARM reads apply first: Defender's expired rules removed, finished operations completed."""
    from . import security
    from .server import settle_operations
    security.expire(world)
    settle_operations(world)


def _quota_headers(remaining, resets_after):
    seconds = max(0, math.ceil(resets_after))
    text = '{:02d}:{:02d}:{:02d}'.format(seconds // 3600, seconds % 3600 // 60, seconds % 60)
    return {'x-ms-user-quota-remaining': str(remaining), 'x-ms-user-quota-resets-after': text,
            'x-ms-ratelimit-remaining-tenant-resource-requests': str(remaining)}


def _spend_quota(world, caller):
    """Count one query of `caller`; returns the quota headers, or raises the 429 when the window's quota is spent."""
    graph = state(world)
    with graph['quota_lock']:
        now = time.monotonic()
        window = graph['quota'].get(caller.object_id)
        if window is None or now - window[0] >= world.graph_window:
            window = graph['quota'][caller.object_id] = [now, 0]
        left = world.graph_window - (now - window[0])
        if window[1] >= world.graph_quota:
            headers = _quota_headers(0, left)
            headers['Retry-After'] = str(max(1, math.ceil(left)))
            raise ArmError(429, 'RateLimiting', _support_message(world), details=[dict(THROTTLED)], headers=headers)
        window[1] += 1
        return _quota_headers(world.graph_quota - window[1], left)


# -- errors ---------------------------------------------------------------------------------------------------
def _support_message(world):
    return 'Please provide below info when asking for support: timestamp = {}, correlationId = {}.'.format(
        world.clock.now().strftime('%Y-%m-%dT%H:%M:%S.%f0Z'), uuid.uuid4())


class QueryError(Exception):
    """A query the stand-in does not understand: `code` (ParserFailure, UnsupportedByStandIn or
    FailedToResolveScalarExpression), a message saying which part, and where."""

    def __init__(self, code, message, token=None):
        super().__init__(message)
        self.code, self.message, self.token = code, message, token


def _bad_request(world, details, headers):
    return ArmError(400, 'BadRequest', _support_message(world), details=details, headers=headers)


def _query_refused(world, text, err, headers):
    detail = {'code': err.code, 'message': err.message}
    if err.token is not None:
        before = text[:err.token.pos]
        detail.update(line=before.count('\n') + 1, characterPositionInLine=len(before.split('\n')[-1]),
                      token=err.token.text or '<EOF>')
    return _bad_request(world, [dict(INVALID_QUERY), detail], headers)


# -- the Kusto subset: tokens -----------------------------------------------------------------------------------
class Token:
    def __init__(self, kind, text, pos, value=None):
        self.kind, self.text, self.pos, self.value = kind, text, pos, value

    def __repr__(self):
        return 'Token({}, {!r})'.format(self.kind, self.text)


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>==|!=|=~|!~|<=|>=|[|(),.\[\]=<>!~*+/%@:;{}-])
""", re.X)
_ESCAPES = {'n': '\n', 't': '\t', 'r': '\r', '\\': '\\', "'": "'", '"': '"'}


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise QueryError('ParserFailure', "Syntax error at '{}' (position {}): not a token of the query language."
                             .format(text[pos], pos), Token('char', text[pos], pos))
        kind = match.lastgroup
        if kind == 'string':
            raw = match.group()
            value = re.sub(r'\\(.)', lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw[1:-1])
            tokens.append(Token('string', raw, pos, value))
        elif kind != 'space':
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token('eof', '', len(text)))
    return tokens


# -- the Kusto subset: parsing -----------------------------------------------------------------------------------
# Expressions are tuples: ('col', column, (path...)), ('lit', text), ('call', name, expr), ('not', expr),
# ('and', a, b), ('or', a, b), ('cmp', op, left, right), ('in', case_insensitive, left, (texts...)).
class Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0
        self.columns = list(COLUMNS)

    @property
    def token(self):
        return self.tokens[self.at]

    def take(self):
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text, what):
        token = self.token
        if token.text.lower() != text.lower() or token.kind == 'string':
            raise self.parse_error('expected {} here'.format(what))
        return self.take()

    def parse_error(self, problem):
        token = self.token
        shown = "'{}'".format(token.text) if token.kind != 'eof' else 'the end of the query'
        return QueryError('ParserFailure', 'Syntax error at {} (position {}): {}.'.format(shown, token.pos, problem),
                          token)

    def unsupported(self, what, token=None):
        token = token or self.token
        return QueryError('UnsupportedByStandIn', '{} (position {}) is outside the Kusto the local Azure stand-in '
                                                  'evaluates: table Resources; operators where, project, order by; '
                                                  '==, !=, =~, !~, in, in~, contains, startswith, and, or, not(); '
                                                  'functions tostring(), tolower().'.format(what, token.pos), token)

    def query(self):
        """[('where', expr) | ('project', [columns]) | ('order', [(column, descending)])]."""
        first = self.token
        steps = []
        if first.kind == 'word' and first.text not in OPERATOR_WORDS:
            self.take()
            if first.text.lower() != 'resources':
                if first.text.lower() in OTHER_TABLES:
                    raise self.unsupported("The table '{}'".format(first.text), first)
                raise QueryError('FailedToResolveTableExpression', "Failed to resolve table expression named '{}' "
                                 '(position {}).'.format(first.text, first.pos), first)
            if self.token.kind == 'eof':
                return steps
            self.expect('|', "'|' after the table name")
        elif first.kind == 'eof':
            raise self.parse_error('the query is empty')
        elif first.kind != 'word':
            raise self.parse_error('a query starts with a table or an operator')
        while True:
            steps.append(self.operator())
            if self.token.kind == 'eof':
                return steps
            self.expect('|', "'|' or the end of the query")

    def operator(self):
        token = self.token
        if token.kind != 'word':
            raise self.parse_error('expected an operator after the pipe')
        name = token.text   # Kusto's operators are lower case; `Where` is not one
        if name == 'where':
            self.take()
            expr = self.expression()
            return ('where', expr)
        if name == 'project':
            self.take()
            return ('project', self.project_list())
        if name == 'order':
            self.take()
            if self.token.text != 'by':
                raise self.parse_error("expected 'by' after 'order'")
            self.take()
            return ('order', self.order_list())
        raise self.unsupported("The operator '{}'".format(token.text))

    def project_list(self):
        columns = []
        while True:
            token = self.token
            if token.kind != 'word':
                raise self.parse_error('expected a column name')
            self.take()
            if self.token.text in ('=', '.', '(', '['):
                raise self.unsupported("'project' with anything but plain column names ('{}{}')".format(
                    token.text, self.token.text), self.token)
            columns.append(self.column_name(token))
            if self.token.text != ',':
                break
            self.take()
        self.columns = columns
        return columns

    def order_list(self):
        keys = []
        while True:
            token = self.token
            if token.kind != 'word':
                raise self.parse_error('expected a column name')
            self.take()
            if self.token.text in ('.', '(', '['):
                raise self.unsupported("'order by' with anything but plain column names", self.token)
            column = self.column_name(token)
            descending = True
            if self.token.kind == 'word' and self.token.text in ('asc', 'desc'):
                descending = self.take().text == 'desc'
            if self.token.kind == 'word' and self.token.text == 'nulls':
                raise self.unsupported("'nulls first/last'")
            keys.append((column, descending))
            if self.token.text != ',':
                return keys
            self.take()

    def column_name(self, token):
        if token.text not in self.columns:
            known = [c for c in self.columns if c.lower() == token.text.lower()]
            hint = " (column names are case-sensitive: '{}')".format(known[0]) if known else ''
            raise QueryError('FailedToResolveScalarExpression', "Failed to resolve scalar expression named '{}'{} "
                             '(position {}).'.format(token.text, hint, token.pos), token)
        return token.text

    def expression(self):
        left = self.conjunction()
        while self.token.kind == 'word' and self.token.text == 'or':
            self.take()
            left = ('or', left, self.conjunction())
        return left

    def conjunction(self):
        left = self.unary()
        while self.token.kind == 'word' and self.token.text == 'and':
            self.take()
            left = ('and', left, self.unary())
        return left

    def unary(self):
        token = self.token
        if token.kind == 'word' and token.text == 'not':
            self.take()
            self.expect('(', "'(' after not")
            inner = self.expression()
            self.expect(')', "')'")
            return ('not', inner)
        if token.text == '(':
            self.take()
            inner = self.expression()
            self.expect(')', "')'")
            return inner
        return self.comparison()

    def comparison(self):
        left = self.operand()
        token = self.token
        if token.kind == 'op' and token.text in STRING_OPERATORS or \
                token.kind == 'word' and token.text in STRING_OPERATORS:
            self.take()
            return ('cmp', token.text, left, self.operand())
        if token.kind == 'word' and token.text == 'in':
            self.take()
            insensitive = False
            if self.token.text == '~':
                self.take()
                insensitive = True
            return ('in', insensitive, left, self.literal_list())
        if token.kind == 'op' and token.text in ('!', '<', '>', '<=', '>=', '=') or \
                token.kind == 'word' and token.text.lower() in OTHER_OPERATORS:
            text = token.text + (self.tokens[self.at + 1].text if token.text == '!' else '')
            raise self.unsupported("The operator '{}'".format(text))
        raise self.parse_error('expected a comparison (==, !=, =~, !~, in, in~, contains, startswith)')

    def literal_list(self):
        self.expect('(', "'(' after in")
        values = []
        while True:
            token = self.token
            if token.kind != 'string':
                if token.kind == 'number':
                    raise self.unsupported('A number')
                raise self.parse_error('expected a string literal in the list')
            values.append(self.take().value)
            if self.token.text == ')':
                self.take()
                return tuple(values)
            self.expect(',', "',' or ')'")

    def operand(self):
        token = self.token
        if token.kind == 'string':
            self.take()
            return ('lit', token.value)
        if token.kind == 'number':
            raise self.unsupported('A number')
        if token.kind != 'word' or token.text in ('and', 'or', 'by', 'in', 'not') + OPERATOR_WORDS:
            raise self.parse_error('expected a column, a string or a function call')
        self.take()
        if self.token.text == '(':
            if token.text not in FUNCTIONS:
                raise self.unsupported("The function '{}'".format(token.text), token)
            self.take()
            inner = self.operand()
            self.expect(')', "')' closing {}()".format(token.text))
            return ('call', token.text, inner)
        column = self.column_name(token)
        path = []
        while self.token.text in ('.', '['):
            if self.token.text == '[':
                raise self.unsupported("A bracketed property path ('[...]')")
            self.take()
            if column not in DYNAMIC_COLUMNS:
                raise QueryError('FailedToResolveScalarExpression', "'{0}' is a string column: a path into it ('{0}.') "
                                 'does not resolve.'.format(column), token)
            name = self.token
            if name.kind != 'word':
                raise self.parse_error('expected a property name after the dot')
            path.append(self.take().text)
        return ('col', column, tuple(path))


def parse(text):
    """The steps of a query, or QueryError."""
    return Parser(text).query()


# -- the Kusto subset: evaluation -----------------------------------------------------------------------------
def _text(value):
    """A value as Kusto's tostring() shows it: a string as itself, null as "", a dynamic object as compact JSON."""
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(',', ':'))


def _value(expr, row):
    kind = expr[0]
    if kind == 'lit':
        return expr[1]
    if kind == 'call':
        inner = _text(_value(expr[2], row))
        return inner.lower() if expr[1] == 'tolower' else inner
    value = row.get(expr[1])
    for name in expr[2]:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def holds(expr, row):
    kind = expr[0]
    if kind == 'and':
        return holds(expr[1], row) and holds(expr[2], row)
    if kind == 'or':
        return holds(expr[1], row) or holds(expr[2], row)
    if kind == 'not':
        return not holds(expr[1], row)
    if kind == 'in':
        value = _text(_value(expr[2], row))
        if expr[1]:
            return value.lower() in (v.lower() for v in expr[3])
        return value in expr[3]
    op, left, right = expr[1], _text(_value(expr[2], row)), _text(_value(expr[3], row))
    if op == '==':
        return left == right
    if op == '!=':
        return left != right
    if op == '=~':
        return left.lower() == right.lower()
    if op == '!~':
        return left.lower() != right.lower()
    if op == 'contains':
        return right.lower() in left.lower()
    return left.lower().startswith(right.lower())   # startswith


def _shuffle_key(row):
    """The stand-in's own order: stable, but neither by id nor by creation."""
    return hashlib.sha1((row.get('id') or json.dumps(row, sort_keys=True)).lower().encode()).hexdigest()


def run(steps, rows):
    """Rows after the query's steps; returns (rows, columns)."""
    rows = sorted(rows, key=_shuffle_key)
    columns = list(COLUMNS)
    for step in steps:
        if step[0] == 'where':
            rows = [row for row in rows if holds(step[1], row)]
        elif step[0] == 'project':
            columns = list(step[1])
            rows = [{c: row.get(c) for c in columns} for row in rows]
        else:
            for column, descending in reversed(step[1]):
                present = [r for r in rows if r.get(column) is not None]
                missing = [r for r in rows if r.get(column) is None]
                present.sort(key=lambda r, c=column: _sort_key(r[c]), reverse=descending)
                rows = present + missing if descending else missing + present
    return rows, columns


def _sort_key(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, '')
    return (1, 0, _text(value))


# -- rows -----------------------------------------------------------------------------------------------------
def _row(world, links, body):
    """A resource as a row of the Resources table (`links`: see `_links`)."""
    from . import network
    rid = body['id']
    parts = rid.split('/')
    kind = body.get('type', '').lower()
    properties = copy.deepcopy(body.get('properties') or {})
    if kind == network.NSG_TYPE.lower():
        # As a GET shows an NSG: with the NICs and subnets it is attached to.
        for name in ('networkInterfaces', 'subnets'):
            attached = sorted(links[name].get(rid.lower(), []), key=str.lower)
            if attached:
                properties[name] = [{'id': i} for i in attached]
    elif kind == network.NIC_TYPE.lower():
        # As a GET shows a NIC: with its VM, each public IP as `{id}` only.
        for config in properties.get('ipConfigurations') or []:
            ref = (config.get('properties') or {}).get('publicIPAddress')
            if ref:
                config['properties']['publicIPAddress'] = {'id': ref['id']}
        if rid.lower() in links['virtualMachine']:
            properties['virtualMachine'] = {'id': links['virtualMachine'][rid.lower()]}
    return {'id': rid, 'name': body.get('name'), 'type': kind, 'tenantId': world.tenant_id,
            'kind': body.get('kind') or '', 'location': body.get('location') or '', 'resourceGroup': parts[4].lower(),
            'subscriptionId': parts[2], 'managedBy': body.get('managedBy') or '',
            'sku': copy.deepcopy(body.get('sku')), 'plan': copy.deepcopy(body.get('plan')), 'properties': properties,
            'tags': copy.deepcopy(body.get('tags') or {}), 'identity': copy.deepcopy(body.get('identity')),
            'zones': copy.deepcopy(body.get('zones')), 'extendedLocation': copy.deepcopy(body.get('extendedLocation'))}


def _links(resources):
    """Back-references ARM computes on read, in one pass: NSG id -> attached NIC ids and subnet ids; NIC id -> VM id
    (keys lower-case)."""
    from . import compute, network
    links = {'networkInterfaces': {}, 'subnets': {}, 'virtualMachine': {}}
    for body in resources.values():
        kind = body.get('type', '').lower()
        props = body.get('properties') or {}
        if kind == network.NIC_TYPE.lower():
            nsg = (props.get('networkSecurityGroup') or {}).get('id')
            if nsg:
                links['networkInterfaces'].setdefault(nsg.lower(), []).append(body['id'])
        elif kind == network.VNET_TYPE.lower():
            for subnet in props.get('subnets') or []:
                nsg = ((subnet.get('properties') or {}).get('networkSecurityGroup') or {}).get('id')
                if nsg:
                    links['subnets'].setdefault(nsg.lower(), []).append(subnet['id'])
        elif kind == compute.VM_TYPE.lower():
            for nic in (props.get('networkProfile') or {}).get('networkInterfaces') or []:
                links['virtualMachine'].setdefault(nic['id'].lower(), body['id'])
    return links


def _in_resources_table(body):
    """Top-level resources of a subscription, but not resource groups nor Defender's JIT policies."""
    kind = body.get('type', '')
    parts = body.get('id', '').split('/')
    return kind.count('/') == 1 and kind.lower() != 'microsoft.resources/resourcegroups' and len(parts) == 9 \
        and parts[1].lower() == 'subscriptions' and parts[3].lower() == 'resourcegroups'


def visible_rows(world, caller, subscriptions):
    """The rows of `subscriptions` (lower-case ids) that `caller` may read, from the frozen copy if there is one."""
    graph = state(world)
    if graph['frozen'] is None:
        _settle(world)
    with world.lock:
        resources = graph['frozen'] if graph['frozen'] is not None else world.resources
        links = _links(resources)
        rows = []
        for body in list(resources.values()):
            if not _in_resources_table(body):
                continue
            if body['id'].split('/')[2].lower() not in subscriptions:
                continue
            if not world.is_authorized(caller, body['type'] + '/read', body['id']):
                continue
            rows.append(_row(world, links, body))
        return rows


# -- scope ------------------------------------------------------------------------------------------------------
def _scope_subscriptions(req, body, headers):
    """The lower-case ids of the subscriptions the query runs over, or the refusal."""
    world, caller = req.world, req.caller
    subs, groups = body.get('subscriptions'), body.get('managementGroups')
    if subs and groups:
        # *unconfirmed*: Azure may run over both; refusing is the harsher reading.
        raise _bad_request(world, [{'code': 'InvalidScopes', 'message': 'Give either subscriptions or '
                                                                        'managementGroups, not both.'}], headers)
    if subs and len(subs) > MAX_SUBSCRIPTIONS:
        # Azure's limit per request (az cuts the list at 1000); the code is *unconfirmed*.
        raise _bad_request(world, [{'code': 'TooManySubscriptions', 'message': 'At most {} subscriptions may be '
                                    'given in one request; {} were.'.format(MAX_SUBSCRIPTIONS, len(subs))}], headers)
    if groups and len(groups) > MAX_MANAGEMENT_GROUPS:
        raise _bad_request(world, [{'code': 'TooManyManagementGroups', 'message': 'At most {} management groups may '
                                    'be given in one request; {} were.'.format(MAX_MANAGEMENT_GROUPS, len(groups))}],
                           headers)
    known = {s.lower(): s for s in world.subscriptions}
    if groups:
        chosen = set()
        for name in groups:
            key = name.lower()
            scope = '/providers/Microsoft.Management/managementGroups/' + name
            visible = key in world.management_groups and (
                any(world.covers(a.scope, scope) or world.covers(scope, a.scope)
                    for a in world.live_assignments()
                    if a.principal_id in {caller.object_id} | world.groups_of(caller.object_id)))
            if not visible:
                raise _bad_request(world, [{'code': 'ManagementGroupsContainInvalidIds', 'message':
                                            "The provided management groups must be valid. Given: '{}'.".format(
                                                "','".join(groups))}], headers)
            chosen.update(s.lower() for s in world.subscriptions_under(key))
        return {s for s in chosen if world.has_any_access(caller, known[s])}
    requested = [s.lower() for s in subs] if subs else list(known)
    eligible = {s for s in requested if s in known and world.has_any_access(caller, known[s])}
    if not eligible:
        raise _bad_request(world, [{'code': 'NoValidSubscriptionsInQueryRequest', 'message':
                                    "There must be at least one subscription that is eligible to contain resources. "
                                    "Given: '{}'.".format("','".join(subs or []))}], headers)
    return eligible


# -- paging ---------------------------------------------------------------------------------------------------
def _binding(body):
    """What a skip token is bound to: the query text and the scope."""
    scope = {'subscriptions': sorted(s.lower() for s in body.get('subscriptions') or []),
             'managementGroups': sorted(g.lower() for g in body.get('managementGroups') or []),
             'query': body.get('query')}
    return hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()[:32]


def _make_token(body, skip, top):
    data = {'$id': '1', 'MaxRows': top, 'RowsToSkip': skip, 'QueryBinding': _binding(body)}
    return base64.b64encode(json.dumps(data).encode()).decode()


def _read_token(world, body, token, headers):
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
        skip, top, bound = int(data['RowsToSkip']), int(data['MaxRows']), data['QueryBinding']
    except (ValueError, KeyError, TypeError):
        bound, skip, top = None, 0, 0
    if bound != _binding(body):
        # Code and wording *unconfirmed*: Azure documents that a token goes with "the same query and scopes".
        raise _bad_request(world, [{'code': 'InvalidSkipToken', 'message': 'The $skipToken is not valid for this '
                                    'request: a token is only good for the same query and scopes as the request '
                                    'that returned it.'}], headers)
    return skip, top


def _table(rows, columns):
    types = {c: 'string' if c in STRING_COLUMNS else 'object' for c in COLUMNS}
    return {'columns': [{'name': c, 'type': types.get(c, 'object')} for c in columns],
            'rows': [[row.get(c) for c in columns] for row in rows]}


# -- the route ------------------------------------------------------------------------------------------------
@route('POST', '/providers/Microsoft.ResourceGraph/resources')
def query_resources(req):
    """Resources (the query API); see the module docstring."""
    world = req.world
    if not req.api_version:
        raise ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is '
                                                          'required for all requests.')
    if req.api_version not in API_VERSIONS:
        raise ArmError(400, 'NoRegisteredProviderFound', "No registered resource provider found for location 'global' "
                       "and API version '{}' for type 'resources'. The supported api-versions are '{}'.".format(
                           req.api_version, ', '.join(API_VERSIONS)))
    headers = _spend_quota(world, req.caller)
    try:
        return _answer(req, headers)
    except ArmError as err:
        err.headers = dict(headers, **err.headers)
        raise


def _answer(req, headers):
    world = req.world
    req.validate('resourcegraph', 'Resources')
    body = req.body
    options = body.get('options') or {}
    if body.get('facets'):
        raise _bad_request(world, [{'code': 'UnsupportedByStandIn', 'message': 'The local Azure stand-in does not '
                                    'compute facets.'}], headers)
    subscriptions = _scope_subscriptions(req, body, headers)
    text = body['query']
    try:
        steps = parse(text)
    except QueryError as err:
        raise _query_refused(world, text, err, headers) from None
    rows, columns = run(steps, visible_rows(world, req.caller, subscriptions))
    skip, top = options.get('$skip', 0), options.get('$top', DEFAULT_TOP)
    if options.get('$skipToken'):
        skip, top = _read_token(world, body, options['$skipToken'], headers)
        skip = options.get('$skip', skip)
        top = options.get('$top', top)
    page = rows[skip:skip + top]
    more = skip + len(page) < len(rows)
    answer = {'totalRecords': len(rows), 'count': len(page), 'data': None, 'facets': [],
              'resultTruncated': 'true' if more and 'id' not in columns else 'false'}
    if (options.get('resultFormat') or 'objectArray') == 'table':
        answer['data'] = _table(page, columns)
    else:
        answer['data'] = page
    if more and 'id' in columns:
        answer['$skipToken'] = _make_token(body, skip + len(page), top)
    return Response(200, answer, headers)


@route('POST', '/_standin/graph-lag', auth=False)
def control_lag(req):
    """For people driving the stand-in from a shell: {"frozen": true} freezes Resource Graph's view of the resources
    (`freeze`), {"frozen": false} thaws it."""
    if (req.body or {}).get('frozen', True):
        freeze(req.world)
    else:
        thaw(req.world)
    return Response(200, {'frozen': state(req.world)['frozen'] is not None})
