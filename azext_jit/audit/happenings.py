# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""An Activity Log event read as a JIT happening, and the reading every mode shares.

Everything in an event except what Azure itself fills in (time, caller, claims, operation, resource, status) was
written by whoever made the call: `properties.requestbody` is the body they sent, so a rule description or a
justification in it is only what that caller claimed. It is read with bounds (size, shape, one line) and shown
as recorded, never acted on: `log` writes nothing.
"""
import json
import re
from dataclasses import dataclass, field

MAX_BODY = 65536     # a requestbody larger than this is not read (Azure keeps bodies far smaller)
MAX_TEXT = 500       # a justification or caller shown longer than this is cut
DEFENDER_APP_IDS = frozenset({'8edd93e1-2103-40b4-bd70-6e34e586362d'})   # "Windows Azure Security Resource Provider"
DEFENDER = 'Defender for Cloud'
PIM = 'PIM'
USER = 'user'
# A managed identity's `xms_mirid`: a user-assigned identity, or the resource a system-assigned one belongs to.
_MI_RESOURCE = re.compile(r'^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[a-z0-9.]+/[^/]+/[^/]+'
                          r'(/[^/]+/[^/]+)*$', re.I)


@dataclass
class Happening:  # pylint: disable=too-many-instance-attributes  # one field per fact an event can carry
    """One thing that happened. `key` joins the happenings of one request (see story.py); `vm_id` (or, when only
    a hash of it is known, `vm_key`) says which VM."""
    time: object
    action: str
    caller: str = None
    actor: str = USER
    mode: str = None
    vm_id: str = None
    vm_key: str = None
    key: tuple = None
    ports: tuple = ()
    source: str = None
    end: object = None
    justification: str = None
    link: str = None          # the 8 hex of the PIM request this opening was approved by
    result: str = 'Succeeded'
    correlation_id: str = None
    rule: str = None          # the NSG rule's id, for writes and deletes of one
    extra: dict = field(default_factory=dict)


def operation(event):
    return str(((event.get('operationName') or {}).get('value')) or '').lower()


def resource_id(event):
    return str(event.get('resourceId') or '')


def status(event):
    """'Started', 'Accepted', 'Succeeded', 'Failed', ..."""
    return str((event.get('status') or {}).get('value') or '')


FINAL = ('Succeeded', 'Failed', 'Canceled')
ENDED = FINAL + ('Accepted',)    # an asynchronous operation's acceptance is its end where nothing follows
SUCCEEDED = ('Succeeded', 'Accepted')


def ended(event):
    return status(event) in ENDED


def merge_phases(events):
    """One event per operation: ARM logs a write as it starts (`Started`, with the request body) and as it ends
    (`Succeeded`/`Failed`, or `Accepted` for an asynchronous one, often without the body). Keeps the final phase of
    each (correlation id, operation, resource), with the body of its start when it has none of its own."""
    def key(event):
        return (str(event.get('operationId') or event.get('correlationId') or event.get('eventDataId') or id(event)),
                operation(event), resource_id(event).lower())
    bodies, begun = {}, {}
    for event in events:
        props = event.get('properties') if isinstance(event.get('properties'), dict) else {}
        if status(event) == 'Started':
            begun.setdefault(key(event), event.get('eventTimestamp'))
            if props.get('requestbody') is not None:
                bodies.setdefault(key(event), props['requestbody'])
    finals = {}
    for event in events:
        if status(event) in ENDED:
            held = finals.get(key(event))
            if held is None or (status(held) not in FINAL and status(event) in FINAL):
                finals[key(event)] = event
    out = []
    for found_key, event in finals.items():
        props = event.get('properties') if isinstance(event.get('properties'), dict) else {}
        if props.get('requestbody') is None and found_key in bodies:
            event = dict(event, properties=dict(props, requestbody=bodies[found_key]))
        if begun.get(found_key):    # it happened when it started: Defender may write rules before an end is logged
            event = dict(event, eventTimestamp=begun[found_key])
        out.append(event)
    return out


def when(event):
    from azext_jit.times import parse_time
    try:
        return parse_time(str(event.get('eventTimestamp') or ''))
    except (ValueError, OverflowError):
        return None


def body(event):
    """The request body the caller sent (`properties.requestbody`), as a dict, or None."""
    raw = (event.get('properties') or {}).get('requestbody')
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or len(raw) > MAX_BODY:
        return None
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def one_line(text, limit=MAX_TEXT):
    """Text as shown: control characters become spaces, runs of spaces one, cut with '...' beyond `limit`."""
    if text is None:
        return None
    words = ' '.join(re.sub(r'[\x00-\x1f\x7f]', ' ', str(text)).split())
    return words if len(words) <= limit else words[:limit - 3] + '...'


def caller_of(event):
    """The caller as Azure names it: a user's UPN and an application's id come as the event's `caller`; a managed
    identity comes as its principal id, and is named by its resource (the `xms_mirid` claim) where the event
    carries it."""
    claims = event.get('claims') or {}
    mirid = claims.get('xms_mirid') if isinstance(claims, dict) else None
    if isinstance(mirid, str) and _MI_RESOURCE.match(mirid.strip()):
        return mirid.strip()
    return one_line(event.get('caller'), 256) or None


def is_defender(event):
    """Whether Defender for Cloud's own service made the call (its first-party application)."""
    claims = event.get('claims') or {}
    ids = {str(event.get('caller') or '').lower()}
    if isinstance(claims, dict):
        ids.add(str(claims.get('appid') or '').lower())
    return bool(ids & DEFENDER_APP_IDS)


def base(event, action, **facts):
    """A Happening with what Azure itself recorded about the event (time, caller, result, correlation)."""
    defender = is_defender(event)
    return Happening(time=when(event), action=action, caller=caller_of(event),
                     actor=DEFENDER if defender else USER,
                     result='Succeeded' if status(event) in SUCCEEDED else 'Failed',
                     correlation_id=str(event.get('correlationId') or '') or None, **facts)
