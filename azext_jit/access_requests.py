# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Access requests as every mode reports them: one request, its ports, and its state."""
import datetime as dt
import hashlib
from dataclasses import dataclass

from azext_jit.times import stamp

# Normalised request states, the same in every mode.
ACTIVE, PENDING, EXPIRED, REVOKED, DENIED = 'active', 'pending', 'expired', 'revoked', 'denied'
# Whether the requestor a request claims is the caller Azure's Activity Log names for it.
CONFIRMED, MISMATCH, UNKNOWN = 'confirmed', 'mismatch', 'unknown'


@dataclass
class RequestPort:
    number: int
    protocol: str
    source: str
    end_time: dt.datetime
    status: str
    reason: str = None
    mapped_port: int = None

    def to_dict(self):
        return {'port': self.number, 'protocol': self.protocol, 'source': self.source,
                'endTime': stamp(self.end_time), 'status': self.status, 'statusReason': self.reason,
                'mappedPort': self.mapped_port}


@dataclass
class AccessRequest:  # pylint: disable=too-many-instance-attributes  # one field per field of a JIT request
    id: str
    vm_id: str
    vm_name: str
    resource_group: str
    mode: str
    requestor: str
    start_time: dt.datetime
    ports: list
    justification: str = None
    firewall_ip: str = None   # where a firewall in front of the VM answers (with a port's mapped_port)
    logged_requestor: str = None   # who Azure's Activity Log says wrote the request's rules (when checked)
    requestor_check: str = None    # CONFIRMED, MISMATCH or UNKNOWN when checked (`show`, NSG mode), else None

    @property
    def status(self):
        """The request's state: active while any port is open; otherwise the most telling of its ports."""
        states = [p.status for p in self.ports]
        for state in (ACTIVE, PENDING, REVOKED, DENIED, EXPIRED):
            if state in states:
                return state
        return EXPIRED

    @property
    def end_time(self):
        ends = [p.end_time for p in self.ports if p.end_time]
        return max(ends) if ends else None

    def to_dict(self, connect=None):
        out = {'id': self.id, 'vm': self.vm_name, 'resourceGroup': self.resource_group, 'mode': self.mode,
               'status': self.status, 'requestor': self.requestor or None, 'justification': self.justification,
               'startTime': stamp(self.start_time), 'endTime': stamp(self.end_time),
               'ports': [p.to_dict() for p in self.ports]}
        if self.requestor_check is not None:
            out['requestorCheck'] = self.requestor_check
            out['activityLogRequestor'] = self.logged_requestor
        if connect is not None:
            out['connect'] = connect
        return out


def derived_request_id(*parts):
    """A short, stable id for a request Azure gave no id (Defender's requests are identified by VM and start
    time): 8 hex characters, enough to tell one VM's requests apart and short enough to type."""
    return hashlib.sha256('|'.join(str(p).lower() for p in parts).encode()).hexdigest()[:8]


# How much access may be open on one VM at a time. Each open port of a request is an allow rule at a priority from
# 100 up, ahead of the VM's deny rule (NSG mode), and an NSG holds at most 1,000 rules: without a bound one person
# could take every free priority and lock everyone else out. A request that would go beyond either bound is
# refused before anything is written; closing access (`revoke`) or its expiry frees room.
MAX_OPEN_REQUESTS_PER_PERSON = 4   # open requests one person may hold on one VM
MAX_OPEN_PORTS_PER_VM = 50         # open ports (allow rules) of all requests on one VM together


def _is_open(port):
    return port.status in (ACTIVE, PENDING)


def same_person(claimed, account):
    """Whether a requestor as a request records it names `account` (as `caller.whoami` or the Activity Log name it):
    case-insensitive, and a requestor shortened with "..." to fit a rule's description matches the account it
    starts with."""
    who, me = (claimed or '').strip().lower(), (account or '').strip().lower()
    if not who or not me or me == 'unknown':
        return False
    return who == me or (who.endswith('...') and me.startswith(who[:-3]))


def _made_by(request, account):
    return same_person(request.requestor, account)


def check_room(target, requests, account, new_ports):
    """Refuse (BadInput, exit 2) a request of `new_ports` ports that would give `account` more than
    MAX_OPEN_REQUESTS_PER_PERSON open requests on the VM, or the VM more than MAX_OPEN_PORTS_PER_VM open ports.
    `requests`: the VM's requests as its mode reports them."""
    from azext_jit.errors import BadInput
    open_requests = [r for r in requests if any(_is_open(p) for p in r.ports)]
    mine = [r for r in open_requests if _made_by(r, account)]
    where = f'-g {target.resource_group} -n {target.name}'
    ends = sorted(r.end_time for r in open_requests if r.end_time)
    if len(mine) >= MAX_OPEN_REQUESTS_PER_PERSON:
        soonest = min((r.end_time for r in mine if r.end_time), default=None)
        raise BadInput(
            f"You already have {len(mine)} open requests on {target.describe()} "
            f"({', '.join(r.id for r in mine)}); one person may hold at most {MAX_OPEN_REQUESTS_PER_PERSON} "
            "on one VM.",
            f"Close one with `az vm jit revoke {where} --request-id <id>` (or all of yours with `az vm jit revoke "
            f"{where}`), or wait until one expires" + (f" (the first at {stamp(soonest)})." if soonest else "."))
    taken = sum(1 for r in open_requests for p in r.ports if _is_open(p))
    if taken + new_ports > MAX_OPEN_PORTS_PER_VM:
        raise BadInput(
            f"{target.describe()} already has {taken} open ports across its requests; {new_ports} more would go "
            f"beyond the {MAX_OPEN_PORTS_PER_VM} that JIT allows open on one VM at a time.",
            f"Ask for fewer ports, have access closed with `az vm jit revoke {where} --request-id <id>` (an "
            "administrator can close everyone's with --all), or wait until some expires"
            + (f" (the first at {stamp(ends[0])})." if ends else "."))
