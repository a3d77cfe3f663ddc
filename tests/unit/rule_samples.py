# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Sample NSG rules and ids shared by the unit tests of NSG rules, conflicts and NSG mode's records."""
import re

VM_ID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/" \
        "Microsoft.Compute/virtualMachines/vm1"
OTHER_VM_ID = VM_ID[:-1] + "2"
IP = "10.0.0.4"
TCP = [(22, "TCP"), (3389, "TCP")]
AZURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,78}[A-Za-z0-9_]$")
DEFENDER_NAMES = [
    "SecurityCenter-JITRule-1170687618-8C18BF8921F041989344B4F1E3A0C370",     # allow
    "SecurityCenter-JITRule_1170687618_62799A5740DE464DB71C4F619369BBAD",     # deny
    "SecurityCenter-JITRule_-1105480617_9EF6964FE766478B9EC568B32FB82045",    # deny, negative int
    "SecurityCenter-JITRule--1105480617-9EF6964FE766478B9EC568B32FB82045",    # allow, negative int
    "SecurityCenter-JITRule_-1282941078-d94f68c391f84fffb715f439ea7ebf4e",    # self-help guide's mixed form
]


def rule(name, priority, port="22", source="*", dest=IP, access="Allow", protocol="Tcp", direction="Inbound",
         **extra):
    """A wire-shape rule; lists become the plural fields."""
    props = {"priority": priority, "direction": direction, "access": access, "protocol": protocol,
             "sourcePortRange": "*"}
    for single, plural, value in (("destinationPortRange", "destinationPortRanges", port),
                                  ("sourceAddressPrefix", "sourceAddressPrefixes", source),
                                  ("destinationAddressPrefix", "destinationAddressPrefixes", dest)):
        if value is None:
            continue
        props[plural if isinstance(value, list) else single] = value
    props.update(extra)
    return {"name": name, "properties": props}


def names(rules):
    return [r["name"] for r in rules]


def warned(conflicts):
    return [r["name"] for r, _ in conflicts.warn]
