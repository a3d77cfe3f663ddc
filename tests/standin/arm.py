# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure Resource Manager itself: subscriptions, resource groups, the Tags API, the Activity Log, and the
stand-in's own control endpoints and IP-echo service."""
import re

from .server import ArmError, Response, paged, route
from .world import utc

RG_TYPE = 'Microsoft.Resources/resourceGroups'

# ARM's limits on tags (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources).
MAX_TAGS, MAX_TAG_NAME, MAX_TAG_VALUE = 50, 512, 256


def rg_id(sub, rg):
    return '/subscriptions/{}/resourceGroups/{}'.format(sub, rg)


def require_subscription(req):
    sub = req.params.get('subscription', '')
    if sub.lower() not in (s.lower() for s in req.world.subscriptions):
        raise ArmError(404, 'SubscriptionNotFound', "The subscription '{}' could not be found.".format(sub))
    return sub


def require_group(req):
    """The resource group of the path, or ARM's ResourceGroupNotFound."""
    sub = require_subscription(req)
    group = req.world.get(rg_id(sub, req.params['resource_group']))
    if group is None:
        raise ArmError(404, 'ResourceGroupNotFound',
                       "Resource group '{}' could not be found.".format(req.params['resource_group']))
    return group


# Characters ARM refuses in tag names ("The tag names '...' have reserved characters '<,>,%,&,\\,?,/' or control
# characters."), as az and Azure PowerShell users report the InvalidTagNameCharacters answer.
_TAG_NAME_RESERVED = re.compile(r'[<>%&\\?/\x00-\x1f\x7f]')


def check_tags(tags):
    """ARM refuses tag sets over its limits, or with reserved characters in a name, with a 400 before anything is
    written."""
    if tags is None:
        return
    bad = [name for name in tags if _TAG_NAME_RESERVED.search(name)]
    if bad:
        raise ArmError(400, 'InvalidTagNameCharacters', "The tag names '{}' have reserved characters "
                                                        "'<,>,%,&,\\,?,/' or control characters.".format(
                                                            ', '.join(bad)))
    if len(tags) > MAX_TAGS:
        raise ArmError(400, 'TooManyTags',
                       'The number of tags ({}) exceeds the maximum of {} tags per resource.'.format(
                           len(tags), MAX_TAGS))
    for name, value in tags.items():
        if len(name) > MAX_TAG_NAME:
            raise ArmError(400, 'InvalidTagNameLength', "The tag name '{}...' exceeds the maximum length of {} "
                                                        "characters.".format(name[:40], MAX_TAG_NAME))
        if value is not None and len(str(value)) > MAX_TAG_VALUE:
            raise ArmError(400, 'InvalidTagValueLength', "The value of tag '{}' exceeds the maximum length of {} "
                                                         "characters.".format(name, MAX_TAG_VALUE))


# -- subscriptions --------------------------------------------------------------------------------------
def _subscription_body(world, sub):
    return {'id': '/subscriptions/' + sub, 'subscriptionId': sub, 'displayName': world.subscriptions[sub],
            'state': 'Enabled', 'tenantId': world.tenant_id,
            'subscriptionPolicies': {'locationPlacementId': 'Public_2014-09-01', 'quotaId': 'PayAsYouGo_2014-09-01',
                                     'spendingLimit': 'Off'}, 'authorizationSource': 'RoleBased'}


@route('GET', '/subscriptions')
def list_subscriptions(req):
    world = req.world
    return paged(req, [_subscription_body(world, s) for s in world.subscriptions
                       if world.has_any_access(req.caller, s)])


@route('GET', '/subscriptions/{subscription}')
def get_subscription(req):
    sub = require_subscription(req)
    if not req.world.has_any_access(req.caller, sub):
        raise ArmError(404, 'SubscriptionNotFound', "The subscription '{}' could not be found.".format(sub))
    return Response(200, _subscription_body(req.world, sub))


# -- resource groups ------------------------------------------------------------------------------------
@route('GET', '/subscriptions/{subscription}/resourcegroups',
       action='Microsoft.Resources/subscriptions/resourceGroups/read')
def list_groups(req):
    sub = require_subscription(req)
    return paged(req, req.world.of_type(RG_TYPE, sub))


@route('GET', '/subscriptions/{subscription}/resourcegroups/{resource_group}',
       action='Microsoft.Resources/subscriptions/resourceGroups/read')
def get_group(req):
    return Response(200, require_group(req))


@route('PUT', '/subscriptions/{subscription}/resourcegroups/{resource_group}',
       action='Microsoft.Resources/subscriptions/resourceGroups/write')
def put_group(req):
    sub = require_subscription(req)
    body = req.body or {}
    check_tags(body.get('tags'))
    rid = rg_id(sub, req.params['resource_group'])
    with req.world.lock:
        existed = req.world.get(rid) is not None
        group = {'id': rid, 'name': req.params['resource_group'], 'type': RG_TYPE, 'location': body.get('location'),
                 'tags': body.get('tags') or {}, 'properties': {'provisioningState': 'Succeeded'}}
        req.world.put(rid, group)
        req.world.record_event(req.caller, 'Microsoft.Resources/subscriptions/resourceGroups/write', rid)
    return Response(200 if existed else 201, group)


# -- tags -----------------------------------------------------------------------------------------------
def _tagged_resource(req):
    scope = '/' + req.params['scope'].strip('/')
    resource = req.world.get(scope)
    if resource is None:
        raise ArmError(404, 'ResourceNotFound', "The Resource '{}' was not found.".format(scope))
    return scope, resource


def _tags_body(scope, tags):
    return {'id': scope + '/providers/Microsoft.Resources/tags/default', 'name': 'default',
            'type': 'Microsoft.Resources/tags', 'properties': {'tags': dict(tags)}}


@route('GET', '/{scope*}/providers/Microsoft.Resources/tags/default', action='Microsoft.Resources/tags/read',
       scope_strip=4)
def get_tags(req):
    scope, resource = _tagged_resource(req)
    return Response(200, _tags_body(scope, resource.get('tags') or {}))


@route('PUT', '/{scope*}/providers/Microsoft.Resources/tags/default', action='Microsoft.Resources/tags/write',
       scope_strip=4)
def put_tags(req):
    """Replace the whole tag set (Tags_CreateOrUpdateAtScope)."""
    scope, resource = _tagged_resource(req)
    tags = ((req.body or {}).get('properties') or {}).get('tags') or {}
    check_tags(tags)
    with req.world.lock:
        resource['tags'] = dict(tags)
        _touch(req, resource)
        req.world.record_event(req.caller, 'Microsoft.Resources/tags/write', scope)
    return Response(200, _tags_body(scope, tags))


@route('PATCH', '/{scope*}/providers/Microsoft.Resources/tags/default', action='Microsoft.Resources/tags/write',
       scope_strip=4)
def patch_tags(req):
    """Tags_UpdateAtScope: `operation` Merge adds/overwrites, Replace replaces, Delete removes the named tags."""
    scope, resource = _tagged_resource(req)
    body = req.body or {}
    operation = (body.get('operation') or '').lower()
    given = (body.get('properties') or {}).get('tags') or {}
    with req.world.lock:
        tags = dict(resource.get('tags') or {})
        if operation == 'merge':
            check_tags(given)
            for name, value in given.items():
                _drop_name(tags, name)   # tag names compare case-insensitively: a Merge of ABC replaces abc
                tags[name] = value
        elif operation == 'replace':
            tags = dict(given)
        elif operation == 'delete':
            for name, value in given.items():
                same = [n for n in tags if n.lower() == name.lower()]
                if same and (value in (None, '') or tags[same[0]] == value):
                    del tags[same[0]]
        else:
            raise ArmError(400, 'InvalidTagOperation', "The tag operation '{}' is not one of Merge, Replace, Delete."
                           .format(body.get('operation')))
        check_tags(tags)
        resource['tags'] = tags
        _touch(req, resource)
        req.world.record_event(req.caller, 'Microsoft.Resources/tags/write', scope, http_method='PATCH')
    return Response(200, _tags_body(scope, tags))


def _drop_name(tags, name):
    """Remove the tag called `name` in any case: Azure's tag names are case-insensitive ("a tag name, regardless of
    the casing, is updated or retrieved"); which spelling survives a Merge is *unconfirmed*: the new one here."""
    for existing in [n for n in tags if n.lower() == name.lower()]:
        del tags[existing]


def _touch(req, resource):
    if 'etag' in resource:
        resource['etag'] = req.world.new_etag()


# -- Activity Log ---------------------------------------------------------------------------------------
# A value is quoted ('...') as the REST docs write it, or bare: `az monitor activity-log list` sends
# `eventTimestamp ge 2024-01-01T10:00:00.123456` (no quotes, no offset: its own utcnow()), and Azure accepts it.
_FILTER_TERM = re.compile(r"(\w+)\s+(eq|ge|le)\s+(?:'([^']*)'|([^\s']+))", re.I)


def _filter_terms(text):
    """[(name, operator, value)] of an Activity Log `$filter` (terms joined by `and`)."""
    return [(name, op, quoted or bare) for name, op, quoted, bare in _FILTER_TERM.findall(text)]


@route('GET', '/subscriptions/{subscription}/providers/microsoft.insights/eventtypes/management/values',
       action='Microsoft.Insights/eventtypes/values/read')
def activity_log(req):
    """ActivityLogs_List (api-version 2015-04-01): `$filter` needs an eventTimestamp range and may narrow
    by resourceGroupName, resourceUri/resourceId, resourceProvider, correlationId, caller or status.
    A timestamp without an offset is UTC (what `az` sends)."""
    require_subscription(req)
    text = req.arg('$filter') or ''
    terms = _filter_terms(text)
    if not any(name.lower() == 'eventtimestamp' and op.lower() == 'ge' for name, op, _ in terms):
        raise ArmError(400, 'BadRequest', "The $filter must contain 'eventTimestamp ge' with a start time.")
    for name, _, value in terms:
        if name.lower() == 'eventtimestamp':
            try:
                utc(value)
            except ValueError:
                # Wording unconfirmed; that Azure refuses an unreadable time with a 400 is what matters.
                raise ArmError(400, 'BadRequest', "The time '{}' in $filter is not a valid date-time.".format(value))
    events = []
    for event in req.world.activity_log:
        keep = True
        for name, op, value in terms:
            name, op = name.lower(), op.lower()
            if name == 'eventtimestamp':
                when = utc(event['eventTimestamp'])
                keep &= when >= utc(value) if op == 'ge' else when <= utc(value)
            elif name == 'resourcegroupname':
                keep &= event['resourceGroupName'].lower() == value.lower()
            elif name in ('resourceuri', 'resourceid'):
                keep &= event['resourceId'].lower().startswith(value.lower().rstrip('/'))
            elif name == 'resourceprovider':
                keep &= event['resourceProviderName']['value'].lower() == value.lower()
            elif name == 'correlationid':
                keep &= event['correlationId'] == value
            elif name == 'caller':
                keep &= event['caller'].lower() == value.lower()
            elif name == 'status':
                keep &= event['status']['value'].lower() == value.lower()
        if keep:
            events.append(event)
    events.reverse()  # newest first, as Azure returns them
    return paged(req, events)


# -- the caller's public IP -----------------------------------------------------------------------------
@route('GET', '/ip', auth=False)
def my_ip(req):
    """An IP-echo service: plain text, like api.ipify.org. `?as=<identity>` answers as that identity would
    be seen (each test identity has its own public IP)."""
    ident = req.world.identities.get(req.arg('as', ''))
    return Response(200, (ident.public_ip if ident else req.world.caller_ip) + '\n')


# -- control endpoints for people driving the stand-in from a shell -------------------------------------
@route('GET', '/_standin/requests', auth=False)
def control_requests(req):
    return Response(200, [{'method': r.method, 'path': r.path, 'status': r.status, 'caller': r.caller}
                          for r in req.world.requests])


@route('POST', '/_standin/clock', auth=False)
def control_clock(req):
    """Move Azure's clock forward: {"minutes": 90}."""
    req.world.clock.advance(**{k: float(v) for k, v in (req.body or {}).items()})
    return Response(200, {'now': req.world.clock.now().isoformat()})


@route('GET', '/_standin/violations', auth=False)
def control_violations(req):
    return Response(200, [{'method': m, 'path': p, 'problem': x} for m, p, x in req.world.schema_violations])
