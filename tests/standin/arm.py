# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure Resource Manager itself: subscriptions, resource groups, the Tags API, the Activity Log, and the
stand-in's own control endpoints and IP-echo service."""
import datetime as dt
import re

from .server import ArmError, Response, paged, route
from .world import iso, utc

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
    return {'id': '/subscriptions/' + sub, 'subscriptionId': sub, 'displayName': world.subscription_name(sub),
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
        req.world.record_event(req.caller, 'Microsoft.Resources/subscriptions/resourceGroups/write', rid,
                               request_body=req.raw_body)
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
        req.world.record_event(req.caller, 'Microsoft.Resources/tags/write', scope, request_body=req.raw_body)
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
        req.world.record_event(req.caller, 'Microsoft.Resources/tags/write', scope, http_method='PATCH',
                               request_body=req.raw_body)
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
# The monitor swagger (ActivityLogs_List, 2015-04-01): "The $filter argument is very restricted and allows only the
# following patterns": an eventTimestamp range, plus at most ONE of these ("NOTE: No other syntax is allowed").
_SCOPES = {'resourcegroupname': 'resourceGroupName', 'resourceuri': 'resourceUri', 'resourceid': 'resourceUri',
           'resourceprovider': 'resourceProvider', 'correlationid': 'correlationId'}
# Accepted beside them: `eventChannels` (in the swagger's tenant patterns), and `caller` and `status`, which
# `az monitor activity-log list --caller/--status` adds to any of the patterns above.
_EXTRAS = ('eventtimestamp', 'eventchannels', 'caller', 'status')
# How far back the Activity Log keeps events.
LOG_RETENTION = dt.timedelta(days=90)


def activity_log_state(world):
    """The Activity Log's knobs, in `world.extensions['activity_log']`: `delay` (a timedelta, default 0) is how long
    after it happened an event becomes visible to queries. Azure documents that events can take minutes to
    appear; the stand-in's default of 0 keeps most tests fast, and tests of late events set a delay."""
    with world.lock:
        return world.extensions.setdefault('activity_log', {'delay': dt.timedelta(0)})


def _filter_terms(text):
    """[(name, operator, value)] of an Activity Log `$filter` (terms joined by `and`)."""
    return [(name, op, quoted or bare) for name, op, quoted, bare in _FILTER_TERM.findall(text)]


def _bad_filter(message):
    # Status and code as ARM answers a refused $filter (400 BadRequest); the exact wording is *unconfirmed*.
    return ArmError(400, 'BadRequest', message)


def _check_filter(terms, now):
    """Azure's restrictions on `$filter`: an `eventTimestamp ge`, times that parse, at most one scope term, nothing
    it does not know; a start no more than `LOG_RETENTION` before `now` and an end (`le`) not before the start."""
    if not any(name.lower() == 'eventtimestamp' and op.lower() == 'ge' for name, op, _ in terms):
        raise _bad_filter("The $filter must contain 'eventTimestamp ge' with a start time.")
    scopes = sorted({_SCOPES[name.lower()] for name, _, _ in terms if name.lower() in _SCOPES})
    unknown = [name for name, _, _ in terms if name.lower() not in _SCOPES and name.lower() not in _EXTRAS]
    if unknown:
        raise _bad_filter("The $filter term '{}' is not supported.".format(unknown[0]))
    if len(scopes) > 1 or len([n for n, _, _ in terms if n.lower() in _SCOPES]) > 1:
        raise _bad_filter('The $filter may narrow by only one of resourceGroupName, resourceUri, resourceProvider or '
                          'correlationId; it names {}.'.format(' and '.join(scopes)))
    times = {'ge': [], 'le': []}
    for name, op, value in terms:
        if name.lower() == 'eventtimestamp':
            try:
                times.setdefault(op.lower(), []).append(utc(value))
            except ValueError:
                # Wording unconfirmed; that Azure refuses an unreadable time with a 400 is what matters.
                raise _bad_filter("The time '{}' in $filter is not a valid date-time.".format(value)) from None
    start = max(times['ge'])
    if start < now - LOG_RETENTION:
        # The log keeps 90 days; that Azure refuses an older start (rather than answering what it still has) and
        # the wording are *unconfirmed*: the harsher reading.
        raise _bad_filter("The start time '{}' is more than {} days in the past: the Activity Log keeps {} days."
                          .format(iso(start), LOG_RETENTION.days, LOG_RETENTION.days))
    if times['le'] and min(times['le']) < start:
        # Wording *unconfirmed*.
        raise _bad_filter("The end time '{}' (eventTimestamp le) is before the start time '{}' (eventTimestamp ge)."
                          .format(iso(min(times['le'])), iso(start)))


# The top-level properties of an event (EventData, api-version 2015-04-01) that `$select` may name.
EVENT_FIELDS = ('authorization', 'claims', 'caller', 'description', 'id', 'eventDataId', 'correlationId', 'eventName',
                'category', 'httpRequest', 'level', 'resourceGroupName', 'resourceProviderName', 'resourceId',
                'resourceType', 'operationId', 'operationName', 'properties', 'status', 'subStatus', 'eventTimestamp',
                'submissionTimestamp', 'subscriptionId', 'tenantId')


def _selected_fields(text):
    """The EventData property names of a `$select` (a comma list; spaces around names allowed, as `az monitor
    activity-log list --select` joins them with ' , '), in Azure's spelling; None without one. A name that is not an
    EventData property is a 400 (*unconfirmed*: Azure may ignore it; the harsher reading)."""
    names = [n.strip() for n in (text or '').split(',') if n.strip()]
    if not names:
        return None
    known = {f.lower(): f for f in EVENT_FIELDS}
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        raise ArmError(400, 'BadRequest', "The $select property '{}' is not a property of an event; use a comma list "
                                          'of: {}.'.format(unknown[0], ', '.join(EVENT_FIELDS)))
    return [known[n.lower()] for n in names]


def _term_holds(event, name, op, value):
    if name == 'eventtimestamp':
        when, bound = utc(event['eventTimestamp']), utc(value)
        return when >= bound if op == 'ge' else when <= bound
    if name in ('resourceuri', 'resourceid'):
        return event['resourceId'].lower().startswith(value.lower().rstrip('/'))
    field = {'resourcegroupname': event['resourceGroupName'], 'caller': event['caller'],
             'resourceprovider': event['resourceProviderName']['value'], 'status': event['status']['value']}.get(name)
    if name == 'correlationid':
        return event['correlationId'] == value
    return field is None or field.lower() == value.lower()


def _matches(event, terms):
    """Whether the event passes every term; the cheap comparisons first, time (parsed) last."""
    ordered = sorted(terms, key=lambda term: term[0].lower() == 'eventtimestamp')
    return all(_term_holds(event, name.lower(), op.lower(), value) for name, op, value in ordered)


@route('GET', '/subscriptions/{subscription}/providers/microsoft.insights/eventtypes/management/values',
       action='Microsoft.Insights/eventtypes/values/read')
def activity_log(req):
    """ActivityLogs_List (api-version 2015-04-01): `$filter` needs an eventTimestamp range and may narrow by ONE of
    resourceGroupName, resourceUri (or resourceId), resourceProvider, correlationId, and by caller or status;
    anything else is a 400, and so is a start more than 90 days ago (the log keeps 90 days) or an end before the
    start. Only the path's subscription's events are listed (a resource group of the same name in another
    subscription is another group). A timestamp without an offset is UTC (what `az` sends). `$select` (a comma
    list of EventData property names) returns only those top-level properties of each event. Events come newest
    first, `world.page_size` a page, with `nextLink`. Events become visible `activity_log_state(world)['delay']`
    after they were submitted (late events, as in Azure)."""
    sub = require_subscription(req).lower()
    terms = _filter_terms(req.arg('$filter') or '')
    now = req.world.clock.now()
    _check_filter(terms, now)
    fields = _selected_fields(req.arg('$select'))
    visible_until = now - activity_log_state(req.world)['delay']
    # a resource group's events come from its own list (the log of a long test session holds thousands)
    group = next((value for name, op, value in terms if name.lower() == 'resourcegroupname'), None) or next(
        (m.group(1) for name, op, value in terms if name.lower() in ('resourceuri', 'resourceid')
         for m in [re.match(r'^/subscriptions/[^/]+/resourcegroups/([^/]+)/', value, re.I)] if m), None)
    candidates = req.world.activity_by_group.get(group.lower(), []) if group else req.world.activity_log
    events = [e for e in candidates if e['subscriptionId'].lower() == sub and _matches(e, terms)
              and utc(e['submissionTimestamp']) <= visible_until]
    events.reverse()  # newest first, as Azure returns them
    if fields is not None:
        events = [{f: e[f] for f in fields if f in e} for e in events]
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


@route('POST', '/_standin/pim-licence', auth=False)
def control_pim_licence(req):
    """Give the tenant an Entra ID P2 licence or take it away: {"licensed": false}. Without it every PIM and approval
    endpoint answers 400 AadPremiumLicenseRequired."""
    req.world.pim_licensed = bool((req.body or {}).get('licensed', True))
    return Response(200, {'licensed': req.world.pim_licensed})
