# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What a request under approval asks for, written into the PIM activation's justification and read back.

The approver sees it in PIM (portal, e-mail, `az vm jit approve`), and the requester's later `request
--request-id` opens exactly it. One line, readable by people and parseable:

    az vm jit: <VM resource id> ports=22/TCP,3389/TCP source=203.0.113.5/32 duration=PT1H | <the user's words>

`source=caller` means "the requester's own public IP, as Defender sees it" (Defender mode fills it in).
Anyone eligible can file a PIM activation by hand with any justification, so what `parse` returns is only a
claim: the caller checks it against the VM's policy like user input before anything opens.
"""
import re
from dataclasses import dataclass, field
from datetime import timedelta

PREFIX = 'az vm jit:'
CALLER = 'caller'
#: PIM keeps justifications short; the user's words are cut to fit.
MAX_LENGTH = 500
# Access opened for an approved request carries the link `[approval <first 8 hex of its PIM name>]` first.
_LINK_RE = re.compile(r'^\[approval ([0-9a-f]{8})\]\s*', re.I)


@dataclass(frozen=True)
class Ask:
    """One request's content: the VM, [(number, protocol)], a source (None: the caller's IP), a duration."""
    vm_id: str
    ports: tuple
    source: object
    duration: timedelta
    reason: str = field(default='', compare=False)

    def describe(self):
        ports = ', '.join(f'{n}/{p}' for n, p in self.ports)
        return (f"{ports} from {self.source or 'the requester’s own IP'} for {_minutes(self.duration)} on "
                f"{self.vm_id.rstrip('/').rsplit('/', 1)[-1]}")


def _minutes(td):
    minutes = int(td.total_seconds() // 60)
    return f'{minutes // 60} h {minutes % 60} min' if minutes % 60 and minutes >= 60 else (
        f'{minutes // 60} h' if minutes >= 60 else f'{minutes} min')


def format_ask(ask):
    from azext_jit.durations import to_iso8601
    ports = ','.join(f'{n}/{p}' for n, p in ask.ports)
    head = f"{PREFIX} {ask.vm_id} ports={ports} source={ask.source or CALLER} duration={to_iso8601(ask.duration)}"
    reason = ' '.join(str(ask.reason or '').split())
    text = f'{head} | {reason}' if reason else head
    return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH - 3] + '...'


def parse_ask(text):
    """The Ask a justification carries, or None when it is not one of ours or cannot be read. Values are only
    shaped here (a port number is an int, a duration parses); whether the VM's policy allows them is checked
    by the caller."""
    from azext_jit.durations import parse_duration
    from azext_jit.errors import BadInput
    from azext_jit.ports import PortSpec
    text = str(text or '')
    if not text.startswith(PREFIX):
        return None
    head, _, reason = text[len(PREFIX):].partition(' | ')
    words = head.split()
    if len(words) != 4:
        return None
    vm_id, fields = words[0], dict(w.split('=', 1) for w in words[1:] if '=' in w)
    if not vm_id.lower().startswith('/subscriptions/') or '/virtualmachines/' not in vm_id.lower() or \
            set(fields) != {'ports', 'source', 'duration'}:
        return None
    try:
        ports = []
        for item in fields['ports'].split(','):
            number, _, protocol = item.partition('/')
            spec = PortSpec(int(number), protocol or 'TCP')
            if (spec.number, spec.protocol) in ports:
                return None
            ports.append((spec.number, spec.protocol))
        duration = parse_duration(fields['duration'])
    except (ValueError, BadInput):
        return None
    source = None if fields['source'] == CALLER else fields['source']
    return Ask(vm_id, tuple(ports), source, duration, reason.strip())


def split_link(justification):
    """(short id of the approved request the access was opened for, or None; the user's own words)."""
    text = str(justification or '').strip()
    match = _LINK_RE.match(text)
    return (match.group(1).lower(), text[match.end():]) if match else (None, text)
