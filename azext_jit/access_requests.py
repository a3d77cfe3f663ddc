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
        if connect is not None:
            out['connect'] = connect
        return out


def derived_request_id(*parts):
    """A short, stable id for a request Azure gave no id (Defender's requests are identified by VM and start
    time): 8 hex characters, enough to tell one VM's requests apart and short enough to type."""
    return hashlib.sha256('|'.join(str(p).lower() for p in parts).encode()).hexdigest()[:8]
