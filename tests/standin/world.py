# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The stand-in's state: one Azure AD tenant, its identities and role assignments, and the ARM resources.

Everything the stand-in knows lives in one `World`, guarded by one re-entrant lock. Azure serialises
writes to one resource; the stand-in serialises all of them, which is stricter but never kinder: a
client that loses an update here (priority clash, ETag mismatch) would lose it in Azure too.

Subscriptions: the first (`subscription_id`) and any added with `add_subscription`; every route serves a resource
of any of them alike. Management groups (`add_management_group`) form a tree under the tenant root group (named by
the tenant id), which holds every subscription not placed elsewhere; a role assigned at a management group's scope
reaches every scope in the subscriptions below it (`covers`).

Tests running in the same process as the server read and change the world directly (advance the
clock, switch the Defender plan off, inject a fault); people who start the server from the command
line use the `/_standin/*` control endpoints instead (see arm.py).
"""
import copy
import datetime as dt
import json
import re
import threading
import uuid
from dataclasses import dataclass, field


def utc(text_or_dt):
    """Parse an ISO 8601 UTC timestamp as Azure writes them ("2020-01-01T10:00:00.123Z")."""
    if isinstance(text_or_dt, dt.datetime):
        return text_or_dt
    text = text_or_dt.strip().replace('Z', '+00:00')
    # Azure writes up to 7 fractional digits; Python accepts 6.
    text = re.sub(r'(\.\d{6})\d+', r'\1', text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _subscription_of(resource_id):
    """The subscription id in a resource id, as written there; '' when it names none."""
    parts = (resource_id or '').strip('/').split('/')
    return parts[1] if len(parts) >= 2 and parts[0].lower() == 'subscriptions' else ''


# How many characters of a request body an Activity Log event keeps (*unconfirmed*: the stand-in's choice).
REQUEST_BODY_LIMIT = 4096


def request_body_text(body):
    """The JSON text of a request body for `properties.requestbody`, cut at `REQUEST_BODY_LIMIT`; None without one.
    Bytes and text are kept as sent; any other value (a dict) is written as compact JSON."""
    if body is None or body in (b'', ''):
        return None
    if isinstance(body, bytes):
        text = body.decode('utf-8', 'replace')
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(',', ':'))
    return text[:REQUEST_BODY_LIMIT]


def iso(moment):
    """Format a UTC datetime the way ARM does (7 fractional digits are common; 6 are accepted everywhere)."""
    return moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class Clock:
    """Azure's clock as the stand-in sees it: real time plus an offset tests can move forward.

    Tokens are judged by real time (MSAL and azure-identity judge them by the machine's clock), so moving
    this clock never logs anyone out. Everything Azure itself times (request expiry, the Activity Log,
    the HTTP `Date` header) uses this clock.
    """

    def __init__(self):
        self._offset = dt.timedelta()

    def now(self):
        return dt.datetime.now(dt.timezone.utc) + self._offset

    def advance(self, **kwargs):
        self._offset += dt.timedelta(**kwargs)

    def reset(self):
        self._offset = dt.timedelta()


# The kinds of identity Azure names differently in the Activity Log.
IDENTITY_KINDS = ('app', 'user', 'managedIdentity')
# The long-form upn claim, as Activity Log events of users carry it beside `upn`.
UPN_CLAIM = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'


@dataclass
class Identity:
    """An identity of the tenant. `public_ip` is where its traffic seems to come from.

    `kind` is what Azure takes it for: 'app' (a service principal of an app registration), 'user' (a person, with
    a UPN) or 'managedIdentity' (a user-assigned managed identity, `resource_id` its ARM id). The kind changes only
    how Azure names and describes the caller (the Activity Log's `caller` and `claims`, PIM's `reviewedBy`): every
    identity still signs in as a service principal with its secret (az only needs a token)."""
    name: str
    client_id: str
    secret: str
    object_id: str
    upn: str
    public_ip: str
    kind: str = 'app'
    resource_id: str = ''

    @property
    def caller(self):
        """How Azure names this caller in the Activity Log: an app by its application (client) id, which is also
        what `az account show` calls a service principal; a user by UPN; a managed identity by its object
        (principal) id."""
        if self.kind == 'user':
            return self.upn
        if self.kind == 'managedIdentity':
            return self.object_id
        return self.client_id

    @property
    def claims(self):
        """The token claims an Activity Log event of this caller carries (those that tell who it is): a user's
        `upn` (also as the long-form claim), `name`, `oid`, `idtyp: user`; an app's `oid`, `appid`, `idtyp: app`; a
        managed identity's too, plus `xms_mirid`, its resource id. That events of a managed identity carry
        `xms_mirid` is *unconfirmed*."""
        if self.kind == 'user':
            return {'upn': self.upn, UPN_CLAIM: self.upn, 'name': self.name, 'oid': self.object_id, 'idtyp': 'user'}
        claims = {'oid': self.object_id, 'appid': self.client_id, 'idtyp': 'app'}
        if self.kind == 'managedIdentity':
            claims['xms_mirid'] = self.resource_id
        return claims


@dataclass
class Fault:
    """A scripted failure: the next `times` requests matching method and path regex get it.

    kind: 'status' answers `status` with an ARM error body (429/5xx carry Retry-After); 'drop' closes the
    connection without an answer, before the request is served; 'drop_after' serves the request (Azure applies
    it) and then closes the connection without an answer; 'delay' sleeps `delay` seconds and then serves the
    request normally; 'lro_failed' serves the request, and the long-running operation it starts ends `Failed`
    with `code` and `message` (what that leaves behind is the resource provider's: see network.py).
    """
    method: str
    path: str
    kind: str = 'status'
    status: int = 500
    code: str = 'InternalServerError'
    message: str = 'An internal error occurred.'
    retry_after: int = 0
    delay: float = 0.0
    times: int = 1
    hits: int = 0

    def matches(self, method, path):
        return (self.times > 0 and re.fullmatch(self.method, method, re.I) is not None
                and re.search(self.path, path, re.I) is not None)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict
    status: int
    caller: str
    body: object = None
    at: dt.datetime = None


@dataclass
class RoleDefinition:
    """A role definition. `role_id` is its GUID (the last segment of its id); built-in roles have Azure's fixed
    GUIDs; custom roles (`custom=True`, made by a roleDefinitions PUT) are visible at and below (and above) the
    scopes in `assignable_scopes`. A RoleDefinition put straight into `world.roles` without `custom=True` is listed
    as a built-in role."""
    name: str
    actions: list
    not_actions: list = field(default_factory=list)
    role_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    custom: bool = False
    description: str = ''
    assignable_scopes: list = field(default_factory=list)
    data_actions: list = field(default_factory=list)
    not_data_actions: list = field(default_factory=list)

    def grants(self, action):
        return any(_action_matches(p, action) for p in self.actions) and \
            not any(_action_matches(p, action) for p in self.not_actions)


def scope_covers(outer, inner):
    """True when `outer` is `inner` or one of its ancestors (case-insensitive; '' or '/' is the root)."""
    outer, inner = outer.rstrip('/').lower(), inner.rstrip('/').lower()
    return outer == '' or inner == outer or inner.startswith(outer + '/')


MANAGEMENT_GROUPS = '/providers/Microsoft.Management/managementGroups/'


def management_group_scope(name):
    """The ARM scope of a management group."""
    return MANAGEMENT_GROUPS + name


def _management_group_name(scope):
    """The lower-case name of the management group a scope is (or is inside), or None."""
    text = (scope or '').rstrip('/').lower()
    prefix = MANAGEMENT_GROUPS.lower()
    if not text.startswith(prefix):
        return None
    return text[len(prefix):].split('/')[0] or None


def _action_matches(pattern, action):
    """RBAC wildcard match, case-insensitive: `*` matches any run of characters, including slashes."""
    regex = '^' + '.*'.join(re.escape(part) for part in pattern.split('*')) + '$'
    return re.match(regex, action, re.I) is not None


# The built-in roles the tests use, reduced to the actions that matter here. Their names and the shape of
# their action lists follow Azure's built-in definitions.
# Their GUIDs are Azure's own (the same in every tenant).
BUILTIN_ROLES = [
    RoleDefinition('Owner', ['*'], role_id='8e3af657-a8ff-443c-a75c-2fe8c4bcd635'),
    RoleDefinition('Contributor', ['*'], ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write',
                                          'Microsoft.Authorization/elevateAccess/Action'],
                   role_id='b24988ac-6180-42a0-ab88-20f7382dd24c'),
    RoleDefinition('Reader', ['*/read'], role_id='acdd72a7-3385-48ef-bd42-f606fba81ae7'),
    RoleDefinition('Security Admin', ['Microsoft.Authorization/*/read', 'Microsoft.Security/*',
                                      'Microsoft.Resources/subscriptions/resourceGroups/read', '*/read'],
                   role_id='fb1c8493-542b-48eb-b624-b4c8fea62acd'),
    RoleDefinition('Security Reader', ['Microsoft.Security/*/read', '*/read'],
                   role_id='39bc4728-0917-49c7-9d2c-d95423bc2eb4'),
    RoleDefinition('Network Contributor', ['Microsoft.Network/*', '*/read'],
                   role_id='4d97b98b-1d4f-4787-a291-c67834d212e7'),
    RoleDefinition('Virtual Machine Contributor', ['Microsoft.Compute/virtualMachines/*',
                                                   'Microsoft.Network/networkInterfaces/*',
                                                   'Microsoft.Network/networkSecurityGroups/join/action',
                                                   '*/read'], role_id='9980e02c-c2be-4d73-94e8-173b1dc7cf3c'),
    RoleDefinition('Tag Contributor', ['Microsoft.Resources/tags/*', '*/read'],
                   role_id='4a9ae827-6dc8-4573-8ac7-8239d42aa03f'),
    RoleDefinition('User Access Administrator', ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
                   role_id='18d7d88d-d35e-4fb5-a5c3-7773c20a72d9'),
]


@dataclass
class RoleAssignment:
    """An active role assignment. `role` is the role's name (a key of `world.roles`, any case). `until` (a UTC
    datetime) ends it: an assignment that PIM activated lasts only until then (`origin` 'activated', `request`
    the name of the schedule request that made it); a plain assignment (`origin` 'assigned') has no end."""
    principal_id: str
    role: str
    scope: str
    until: dt.datetime = None
    origin: str = 'assigned'
    request: str = ''
    name: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: dt.datetime = None

    def active(self, now):
        return self.until is None or now < self.until


class World:
    """All state of the stand-in. Use `with world.lock:` around read-modify-write sequences."""

    def __init__(self, tenant_id=None, subscription_id=None):
        self.lock = threading.RLock()
        self.clock = Clock()
        self.tenant_id = tenant_id or '72f988bf-86f1-41af-91ab-2d7cd011db47'
        self.subscription_id = subscription_id or '00000000-0000-0000-0000-0000000000a1'
        self.subscriptions = {self.subscription_id: 'JIT Test Subscription'}
        self.domain = 'contoso.test'  # the tenant's domain: users' UPNs end in it
        self.identities = {}
        self.roles = {r.name.lower(): r for r in copy.deepcopy(BUILTIN_ROLES)}
        self.assignments = []
        self.resources = {}          # lower-case resource id -> resource body (the ARM JSON)
        self.activity_log = []       # EventData dicts, oldest first
        self.activity_by_group = {}  # resource group (lower) -> its events in activity_log, oldest first
        self.requests = []           # LoggedRequest, oldest first
        self.faults = []
        self.schema_violations = []  # (method, path, message)
        self.operations = {}         # async operation id -> {'status': ..., 'polls_left': n, 'on_done': fn}
        self.page_size = 100         # items per page on every list; tests lower it to force nextLink
        self.lro_polls = 0           # polls answering InProgress before Succeeded (the recordings show none)
        self.lro_seconds = 2.0       # an operation nobody polls completes by itself after this (real seconds)
        # Retry-After (whole seconds) sent with long-running operations. Azure sends 10; azure-core treats 0 as
        # "none given" and waits its default 30 s instead, and the SDKs parse it as an integer: 1 is the
        # fastest faithful value.
        self.retry_after = 1
        self.caller_ip = '203.0.113.10'  # public IP of callers not otherwise known
        self.extensions = {}         # per-module state (security.py keeps its Defender model here)
        self.groups = {}             # Entra group object id -> {'name': ..., 'members': set of object ids}
        self.groups_by_name = {}     # group display name -> object id
        self.pim_licensed = True     # False: every PIM and approval endpoint answers AadPremiumLicenseRequired
        # Management groups below the tenant root group (named by the tenant id, it holds everything): lower-case
        # name -> {'name', 'parent' (lower-case name; None for the root), 'subscriptions' (set of lower-case ids)}.
        self.management_groups = {self.tenant_id.lower(): {'name': self.tenant_id, 'parent': None,
                                                           'subscriptions': set()}}
        # Azure Resource Graph's per-caller quota (graph.py): queries per window, the window in (real) seconds.
        # Azure documents "15 queries within every 5-second window" as an example.
        self.graph_quota = 15
        self.graph_window = 5.0

    # -- subscriptions and management groups -------------------------------------------------------
    def add_subscription(self, subscription_id, name=None):
        """Another subscription of the tenant (directly below the tenant root group); returns its id. Identities
        reach it only through role assignments at or below `/subscriptions/<id>` (or a management group above it)."""
        with self.lock:
            self.subscriptions[subscription_id] = name or 'Subscription ' + subscription_id[:8]
        return subscription_id

    def subscription_name(self, subscription_id):
        """The display name of a subscription, its id compared case-insensitively; None when there is none."""
        return next((name for sub, name in self.subscriptions.items() if sub.lower() == subscription_id.lower()), None)

    @property
    def root_group(self):
        """The name of the tenant root group (Azure names it by the tenant id)."""
        return self.tenant_id

    def add_management_group(self, name, subscriptions=(), parent=None):
        """A management group below `parent` (a management group's name; default the tenant root group) holding
        `subscriptions` (ids; a subscription has one parent, so it moves here from wherever it was). Returns its
        scope, `/providers/Microsoft.Management/managementGroups/<name>`, where roles can be assigned."""
        with self.lock:
            parent_key = (parent or self.tenant_id).lower()
            if parent_key not in self.management_groups:
                raise KeyError('no management group named ' + parent)
            group = self.management_groups.setdefault(name.lower(),
                                                      {'name': name, 'parent': parent_key, 'subscriptions': set()})
            group['parent'] = parent_key if name.lower() != self.tenant_id.lower() else None
            for sub in subscriptions:
                for other in self.management_groups.values():
                    other['subscriptions'].discard(sub.lower())
                group['subscriptions'].add(sub.lower())
        return management_group_scope(name)

    def management_group_of(self, subscription_id):
        """The (lower-case) name of the management group a subscription sits in: the root group unless placed."""
        key = subscription_id.lower()
        return next((name for name, group in self.management_groups.items() if key in group['subscriptions']),
                    self.tenant_id.lower())

    def management_group_ancestors(self, name):
        """A management group's lower-case name and those of the groups above it, up to the root group."""
        chain, key = [], name.lower()
        while key is not None and key not in chain:
            chain.append(key)
            key = self.management_groups[key]['parent'] if key in self.management_groups else None
        return chain

    def subscriptions_under(self, name):
        """The ids (as registered) of the subscriptions in a management group or any group below it."""
        key = name.lower()
        return [sub for sub in self.subscriptions
                if key in self.management_group_ancestors(self.management_group_of(sub))]

    def covers(self, outer, inner):
        """`scope_covers`, plus management groups: a management group scope covers itself, the groups below it,
        and every scope in the subscriptions below it (as a role assigned there does in Azure)."""
        if scope_covers(outer, inner):
            return True
        group = _management_group_name(outer)
        if group is None:
            return False
        inner_group = _management_group_name(inner)
        if inner_group is not None:
            return group in self.management_group_ancestors(inner_group)
        parts = inner.strip('/').split('/')
        if len(parts) >= 2 and parts[0].lower() == 'subscriptions':
            return group in self.management_group_ancestors(self.management_group_of(parts[1]))
        return False

    # -- identities and authorization -------------------------------------------------------------
    def add_identity(self, name, roles=(), public_ip=None, upn=None, kind='app', resource_group='identities'):
        """Create an identity and assign it roles: roles is [(role name, scope)]. `kind` is 'app' (default), 'user'
        (named by its UPN, `<name>@<tenant domain>` unless `upn` is given) or 'managedIdentity' (a user-assigned
        managed identity in `resource_group`, named by its object id). Every kind signs in as a service principal
        (client id and secret): only how Azure names and describes it differs (see `Identity`)."""
        if kind not in IDENTITY_KINDS:
            raise ValueError('kind must be one of {}, not {!r}'.format(', '.join(IDENTITY_KINDS), kind))
        resource_id = ''
        if kind == 'managedIdentity':
            # As the xms_mirid claim writes it (lower-case `resourcegroups`).
            resource_id = '/subscriptions/{}/resourcegroups/{}/providers/Microsoft.ManagedIdentity/' \
                          'userAssignedIdentities/{}'.format(self.subscription_id, resource_group, name)
        ident = Identity(name=name, client_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, name + '.client')),
                         secret='secret-' + name, object_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, name + '.oid')),
                         upn=upn or '{}@{}'.format(name, self.domain), public_ip=public_ip or self.caller_ip,
                         kind=kind, resource_id=resource_id)
        self.identities[name] = ident
        for role, scope in roles:
            self.assign(ident, role, scope)
        return ident

    def assign(self, ident, role, scope, until=None, origin='assigned', request=''):
        """Assign `role` (its name) to an identity (or an object id) at `scope`; returns the RoleAssignment."""
        if role.lower() not in self.roles:
            raise KeyError('no role definition named ' + role)
        principal = ident if isinstance(ident, str) else ident.object_id
        assignment = RoleAssignment(principal, role, scope, until=until, origin=origin, request=request,
                                    created=self.clock.now())
        self.assignments.append(assignment)
        return assignment

    def add_group(self, name, members=()):
        """An Entra group called `name` whose members are identities (or object ids); returns its object id."""
        oid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name + '.group'))
        self.groups[oid] = {'name': name, 'members': {m if isinstance(m, str) else m.object_id for m in members}}
        self.groups_by_name[name] = oid
        return oid

    def groups_of(self, object_id):
        """The object ids of the groups `object_id` is a direct member of."""
        return {gid for gid, group in self.groups.items() if object_id in group['members']}

    def role_by_id(self, role_id):
        """The role definition whose GUID (or full id ending in it) is `role_id`, or None."""
        guid = (role_id or '').rstrip('/').split('/')[-1].lower()
        return next((r for r in self.roles.values() if r.role_id.lower() == guid), None)

    def role_definition_id(self, role):
        """The full id of a role definition, as Azure writes it for subscription-scope role ids."""
        return '/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}'.format(
            self.subscription_id, role.role_id)

    def live_assignments(self):
        """The role assignments in force now (an activated one ends at its `until`)."""
        now = self.clock.now()
        return [a for a in self.assignments if a.active(now)]

    def unassign(self, ident, role=None):
        self.assignments = [a for a in self.assignments
                            if not (a.principal_id == ident.object_id and (role is None or a.role == role))]

    def identity_by_object_id(self, oid):
        return next((i for i in self.identities.values() if i.object_id == oid), None)

    def identity_by_client_id(self, client_id):
        return next((i for i in self.identities.values() if i.client_id == client_id), None)

    def is_authorized(self, ident, action, scope):
        """True when one of the role assignments in force of the identity, or of a group it is a member of, at or
        above `scope` grants `action`."""
        scope = scope.rstrip('/').lower()
        principals = {ident.object_id} | self.groups_of(ident.object_id)
        for assignment in self.live_assignments():
            if assignment.principal_id not in principals:
                continue
            if not self.covers(assignment.scope, scope):
                continue
            if self.roles[assignment.role.lower()].grants(action):
                return True
        return False

    def has_any_access(self, ident, subscription_id):
        """True when a role assignment in force of the identity (or a group of it) is at, below or above (the root, a
        management group holding it) the subscription: what makes Azure list the subscription for it."""
        prefix = '/subscriptions/' + subscription_id.lower()
        principals = {ident.object_id} | self.groups_of(ident.object_id)
        return any(a.principal_id in principals and (scope_covers(prefix, a.scope) or self.covers(a.scope, prefix))
                   for a in self.live_assignments())

    # -- resources -------------------------------------------------------------------------------
    def get(self, resource_id):
        return self.resources.get(resource_id.lower())

    def put(self, resource_id, body):
        self.resources[resource_id.lower()] = body
        return body

    def delete(self, resource_id):
        return self.resources.pop(resource_id.lower(), None)

    def children(self, parent_id, type_segment):
        """Resources directly below `parent_id/type_segment/` (e.g. the NSGs of a resource group)."""
        prefix = (parent_id.rstrip('/') + '/' + type_segment.strip('/') + '/').lower()
        return [body for key, body in self.resources.items()
                if key.startswith(prefix) and '/' not in key[len(prefix):]]

    def of_type(self, resource_type, subscription_id=None, resource_group=None):
        """Every resource of an ARM type ("Microsoft.Network/networkSecurityGroups"), optionally scoped."""
        found = []
        for body in self.resources.values():
            if body.get('type', '').lower() != resource_type.lower():
                continue
            rid = body['id'].lower()
            if subscription_id and not rid.startswith('/subscriptions/{}/'.format(subscription_id.lower())):
                continue
            if resource_group and '/resourcegroups/{}/'.format(resource_group.lower()) not in rid:
                continue
            found.append(body)
        return sorted(found, key=lambda b: b['id'].lower())

    # -- bookkeeping ------------------------------------------------------------------------------
    def new_etag(self):
        return 'W/"{}"'.format(uuid.uuid4())

    def record_event(self, ident, operation, resource_id, status='Succeeded', http_method='PUT', properties=None,
                     sub_status='', request_body=None):
        """Write an Activity Log entry the way ARM does for every write and action, with its caller (`caller` and
        `claims` as Azure names that kind of identity: see `Identity`).

        `request_body` (the raw bytes or text the client sent, or a JSON value) becomes `properties.requestbody`:
        the JSON text of the body, as Azure's event schema shows it for writes, on the operation's FIRST event: ARM
        logs a write as it starts (status `Started`, `BeginRequest`, with the body) and as it ends (the final
        status, `EndRequest`, without it; Microsoft's own Log Analytics samples read `requestbody` from the Start
        rows). Both share the correlation and operation ids. Whether Azure records the body for every provider and
        action, and how much of a long body it keeps, is *unconfirmed*: the stand-in records it on every write and
        action that had a body, and keeps only its first `REQUEST_BODY_LIMIT` characters (the harsher reading: a
        reader must cope with a cut body). Returns the final event."""
        now = self.clock.now()
        properties = dict(properties or {})
        body_text = request_body_text(request_body)
        parts = resource_id.split('/')
        rg = parts[4] if len(parts) > 4 and parts[3].lower() == 'resourcegroups' else ''
        provider = operation.split('/')[0]
        event_id = str(uuid.uuid4())
        event = {
            'authorization': {'action': operation, 'scope': resource_id},
            'caller': ident.caller if ident else '',
            'channels': 'Operation',
            'claims': dict(ident.claims) if ident else {},
            'correlationId': str(uuid.uuid4()),
            'description': '',
            'eventDataId': event_id,
            'eventName': {'value': 'EndRequest', 'localizedValue': 'End request'},
            'category': {'value': 'Administrative', 'localizedValue': 'Administrative'},
            'eventTimestamp': iso(now),
            'id': '{}/events/{}/ticks/{}'.format(resource_id, event_id, int(now.timestamp() * 10**7)),
            'level': 'Informational' if status == 'Succeeded' else 'Error',
            'operationId': str(uuid.uuid4()),
            'operationName': {'value': operation, 'localizedValue': operation},
            'resourceGroupName': rg,
            'resourceProviderName': {'value': provider, 'localizedValue': provider},
            'resourceType': {'value': '/'.join(operation.split('/')[:-1]), 'localizedValue': ''},
            'resourceId': resource_id,
            'status': {'value': status, 'localizedValue': status},
            'subStatus': {'value': sub_status, 'localizedValue': sub_status},
            'submissionTimestamp': iso(now),
            'subscriptionId': _subscription_of(resource_id) or self.subscription_id,
            'tenantId': self.tenant_id,
            'httpRequest': {'clientRequestId': str(uuid.uuid4()), 'clientIpAddress': ident.public_ip if ident else '',
                            'method': http_method},
            'properties': properties,
        }
        if body_text:
            start_id = str(uuid.uuid4())
            self._log_event(dict(
                event, eventDataId=start_id, eventName={'value': 'BeginRequest', 'localizedValue': 'Begin request'},
                id='{}/events/{}/ticks/{}'.format(resource_id, start_id, int(now.timestamp() * 10**7)),
                level='Informational', status={'value': 'Started', 'localizedValue': 'Started'},
                subStatus={'value': '', 'localizedValue': ''}, properties={'requestbody': body_text}))
        self._log_event(event)
        return event

    def _log_event(self, event):
        self.activity_log.append(event)
        self.activity_by_group.setdefault(event['resourceGroupName'].lower(), []).append(event)
