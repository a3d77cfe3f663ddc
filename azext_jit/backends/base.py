"""The interface every JIT mode implements, and the objects commands return.

A mode is where a VM's JIT policy lives and who opens and closes its NSG rules: Defender for Cloud
(`defender.py`) or the extension itself (`nsg.py`). Commands speak only this interface, so a third mode
(say, Azure Firewall DNAT rules) joins by implementing it, without touching the commands.

Every mutating method takes `dry_run` and returns the list of `Change`s it made (or would make): the
same objects feed `--dry-run` output and the normal result, so what a dry run prints is what a real
run does.
"""
import datetime as dt
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass
class Change:
    """One write to Azure: `action` (create/update/delete/restore) of a `kind` (policy/rule/tags)."""
    action: str
    kind: str
    target: str
    vm: str = None
    details: dict = field(default_factory=dict)
    vm_id: str = None      # which VM it is for, when `vm` (a name) could be ambiguous across resource groups

    def concerns(self, target):
        if self.vm_id:
            return self.vm_id.lower() == target.id.lower()
        return self.vm in (target.name, None)

    def to_dict(self):
        out = {'action': self.action, 'kind': self.kind, 'vm': self.vm, 'target': self.target}
        out.update(self.details)
        return out


def rule_change(action, nsg_id, rule, vm_name, vm_id=None):
    """A Change for an NSG rule, with what an admin checks: name, priority, access, source, port."""
    props = rule.get('properties') or {}
    ports = props.get('destinationPortRanges') or [props.get('destinationPortRange')]
    sources = props.get('sourceAddressPrefixes') or [props.get('sourceAddressPrefix')]
    return Change(action, 'rule', nsg_id + '/securityRules/' + rule['name'], vm_name, {
        'name': rule['name'], 'priority': props.get('priority'), 'access': props.get('access'),
        'direction': props.get('direction'), 'protocol': props.get('protocol'),
        'source': ','.join(s for s in sources if s), 'destination': props.get('destinationAddressPrefix'),
        'ports': ','.join(p for p in ports if p), 'description': props.get('description')}, vm_id)


# Normalised request states, the same in every mode.
ACTIVE, PENDING, EXPIRED, REVOKED, DENIED = 'active', 'pending', 'expired', 'revoked', 'denied'


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
                'endTime': _iso(self.end_time), 'status': self.status, 'statusReason': self.reason,
                'mappedPort': self.mapped_port}


@dataclass
class AccessRequest:
    id: str
    vm_id: str
    vm_name: str
    resource_group: str
    mode: str
    requestor: str
    start_time: dt.datetime
    ports: list
    justification: str = None

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
               'startTime': _iso(self.start_time), 'endTime': _iso(self.end_time),
               'ports': [p.to_dict() for p in self.ports]}
        if connect is not None:
            out['connect'] = connect
        return out


def parse_time(text):
    """An ISO 8601 UTC time as Azure writes it (up to 7 fractional digits, `Z`) as an aware datetime."""
    import re
    text = re.sub(r'(\.\d{6})\d+', r'\1', text.strip().replace('Z', '+00:00'))
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def _iso(moment):
    return moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ') if moment else None


def request_id(*parts):
    """A short, stable id for a request Azure gave no id (Defender's requests are identified by VM and start
    time): 8 hex characters, enough to tell one VM's requests apart and short enough to type."""
    return hashlib.sha256('|'.join(str(p).lower() for p in parts).encode()).hexdigest()[:8]


class JitBackend(ABC):
    """One JIT mode. `azure` is an `azext_jit.arm.Azure`; targets are `azext_jit.targets.VmTarget`s."""

    mode = None

    def __init__(self, azure):
        self.azure = azure

    @abstractmethod
    def policy_of(self, target):
        """The VM's JitPolicy in this mode, or None when the VM is not enabled here."""

    @abstractmethod
    def requests_of(self, target, requestors=False):
        """The VM's access requests (AccessRequest list), newest first. `requestors`: also find out who made each
        request where Azure's own record does not say (may cost a call; only views need it)."""

    @abstractmethod
    def protecting_rules(self, target, nsg):
        """The rules of `nsg` (wire JSON) this mode created for the VM."""

    @abstractmethod
    def enable(self, targets, policy, dry_run=False):
        """Give each target `policy`; returns the Changes. Same policy twice: no Changes."""

    @abstractmethod
    def open_access(self, target, policy, grants, source, justification, requestor, dry_run=False):
        """Open access: grants are [(PortPolicy, timedelta)]. Returns (AccessRequest, Changes)."""

    @abstractmethod
    def close_access(self, target, requests, ports=None, dry_run=False):
        """Close these active requests now (only `ports` of them when given). Returns Changes."""

    @abstractmethod
    def disable(self, target, dry_run=False):
        """Take the VM out of this mode's policy and remove its protecting rules. Returns Changes."""

    def cannot_hold(self, target):  # pylint: disable=unused-argument,no-self-use
        """Why this mode cannot protect the VM (a one-line reason), or None when it can."""
        return None

    def remove_expired(self, target, dry_run=False):  # pylint: disable=unused-argument
        """Delete the VM's allow rules whose time is up, when this mode has to (Defender expires its own)."""
        return []

    def expired_rules(self, nsg):
        """Allow rules of `nsg` whose access has ended and that nobody else will remove: [(rule, vm hint)]."""
        return []
