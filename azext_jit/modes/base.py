# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""What a JIT mode can do: the interface every mode implements, and the capabilities handlers ask about.

A mode is where a VM's JIT policy lives and who opens and closes access: Defender for Cloud (`defender.py`) or
the extension itself on the VM's network security group (`nsg_mode.py`). Handlers speak only this interface and
ask a mode what it does (the capabilities below) instead of testing its name, so a third mode (say, Azure
Firewall DNAT rules) is one new module and one line in `modes/__init__.py`.

Every mutating method takes `dry_run` and returns the list of `changes.Change`s it made (or would make): the
same objects feed `--dry-run` output and the normal result, so what a dry run prints is what a real run does.
"""
from abc import ABC, abstractmethod


class JitMode(ABC):  # pylint: disable=too-many-public-methods  # the interface is what a mode can do
    """One JIT mode. `azure` is an `azext_jit.arm.Azure`; targets are `azext_jit.targets.VmTarget`s."""

    name = None    # the `--mode` value
    title = None   # how messages name it ("NSG mode")

    # -- capabilities ---------------------------------------------------------------------------------
    #: The mode's service removes access when its time is up; otherwise `cleanup` must (`remove_expired`).
    expires_access_itself = False
    #: Access stays open after `disable` unless closed first (the service keeps its allow rules until they end).
    closes_access_before_disable = False
    #: A request's source must equal one of the allowed sources (not just lie inside one).
    matches_sources_exactly = False
    #: The service fills in the caller's public IP when a request names no source.
    finds_caller_ip = False
    #: Reading the VM's requests needs its network (NIC, NSG), not just the VM.
    requests_need_network = False
    #: The Azure action that opens access in this mode, as Azure checks it at `approval_scope`: whoever holds it there
    #: actively opens access without approval; under approval a requester is only eligible for it (`azext_jit/pim`).
    opening_action = None

    def __init__(self, azure):
        self.azure = azure

    # -- who can be served ------------------------------------------------------------------------------
    #: Reading a VM's policy costs nothing more than the VM read (modes with the cheaper lookup are asked first).
    policy_on_vm = False
    #: Why the mode's service does not answer here, once `available` or `prefetch` found out (else None).
    unavailable_because = None

    def available(self, target):  # pylint: disable=unused-argument
        """Whether the mode's service answers for this VM's subscription, resource group and region (a refusal that
        means "not here" sets `unavailable_because`; any other error is raised)."""
        return True

    #: Why the mode serves no new VM here, once `can_serve_new_vms` found out (else None).
    not_serving_because = None

    def can_serve_new_vms(self):
        """Whether a VM with no JIT yet should get this mode under `--mode auto` (sets `not_serving_because` when
        not)."""
        return True

    def claimed_by_vm(self, target):
        """Whether the VM itself (its tags, read with it) says it is in this mode. Free to ask, and trusted for
        nothing but the order of reads: `enable` asks which modes serve new VMs before reading policies for a VM
        no mode claims (`chooser.Modes.for_enable`)."""
        return self.policy_on_vm and self.holds(target)

    def cannot_hold(self, target):  # pylint: disable=unused-argument
        """Why this mode cannot protect the VM (a one-line reason), or None when it can."""
        return None

    def prefetch(self, resource_group=None, required=False):  # pylint: disable=unused-argument
        """Read what `policy_of` needs for every VM of a resource group (or the subscription) in as few calls as
        the API allows, so a list of VMs costs no call per VM. Returns whether the service answered; with
        `required`, a refusal is raised rather than noted in `unavailable_because`."""
        return True

    # -- reading -----------------------------------------------------------------------------------------
    def holds(self, target):
        """Whether the VM has configuration in this mode, readable or not (an unreadable policy must not make a VM
        look unprotected: its access can still be revoked and the VM disabled)."""
        return self.policy_of(target) is not None

    @abstractmethod
    def policy_of(self, target):
        """The VM's JitPolicy in this mode, or None when the VM is not enabled here. A stored policy that cannot be
        read raises `errors.NotPossible` saying how to repair it."""

    @abstractmethod
    def requests_of(self, target, requestors=False):
        """The VM's access requests (AccessRequest list), newest first. `requestors`: also find out who made each
        request where Azure's own record does not say (may cost a call; only views need it)."""

    @abstractmethod
    def protecting_rules(self, target):
        """The NSG rules (wire JSON) this mode wrote for the VM, deny and allow."""

    def check_requestors(self, target, requests):  # pylint: disable=unused-argument
        """Where anyone allowed to write the mode's record of a request could claim any requestor, set each request's
        `logged_requestor` and `requestor_check` from who Azure's Activity Log says wrote it (one query; `show`
        only). Nothing to check where the service records the requestor itself."""
        return None

    @abstractmethod
    def approval_scope(self, target):
        """The narrowest scope where Azure checks the permission that opens access on this VM in this mode: what a
        requester is made eligible for under approval (`azext_jit/pim`), and where a PIM activation is filed.
        None when it cannot be known (the VM has no NSG, no policy lists it yet)."""

    #: The permissions Azure checks at `approval_scope` when this mode opens access: what the requester role must
    #: grant for approval to work, and what lets whoever holds it there actively open access without approval.
    approval_actions = ()

    def planned_approval_scope(self, target):
        """`approval_scope` as it will be once `enable` has written the VM's policy (what a dry run of `enable
        --require-approval` sets up, when the policy does not list the VM yet)."""
        return self.approval_scope(target)

    def unprotected_ports(self, target, policy):  # pylint: disable=unused-argument
        """The policy's ports [(number, protocol)] that the VM's protecting rules do not close today (a deny rule
        missing or changed by hand). [] where the mode's service places its rules itself."""
        return []

    def leftover_rules(self, target):  # pylint: disable=unused-argument
        """Rules of this mode for a VM it holds no policy for (a disable cut short, a policy deleted outside JIT,
        a lost Defender plan). [] while the mode holds the VM."""
        return []

    #: Where `show` reports leftover rules it does not remove (see `removes_leftovers`).
    leftover_view_key = 'leftoverRules'

    def leftover_warning(self, target, rules):
        """What `show` says about leftover rules it does not remove."""
        return f"{target.describe()}: {self.title} mode left rules behind: {', '.join(r['name'] for r in rules)}."

    def removes_leftovers(self):
        """Whether `disable` removes `leftover_rules` (rules the extension wrote), or only reports them."""
        return not self.expires_access_itself

    def owns_rule(self, rule):  # pylint: disable=unused-argument
        """True for an NSG rule this mode wrote, for any VM: never a conflicting rule to remove."""
        return False

    def guards_other_vm(self, rule, target):  # pylint: disable=unused-argument
        """True for a deny rule of this mode that protects a VM other than `target` (restores must not defeat it)."""
        return False

    def deny_priority(self, target, rules):  # pylint: disable=unused-argument
        """Where the VM's deny rule sits (or will sit) among `rules`: allow rules ahead of it are not overridden."""
        from azext_jit.nsg.priorities import MAX_PRIORITY
        return MAX_PRIORITY

    # -- writing -----------------------------------------------------------------------------------------
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

    def remove_expired(self, target, dry_run=False):  # pylint: disable=unused-argument
        """Delete the VM's allow rules whose time is up, when this mode has to (see `expires_access_itself`)."""
        return []

    def cleanup(self, resource_group=None, dry_run=False):  # pylint: disable=unused-argument
        """Remove every expired allow rule of this mode in a resource group or the subscription, when the mode
        has to (see `expires_access_itself`). Returns (Changes removed, one-line failures); a failure to remove
        one rule does not stop the others."""
        return [], []

    #: Where the mode has to remove expired access itself: what the names of the allow rules it writes start with.
    #: Fleet cleanup (`fleet/cleanup.py`) asks Azure Resource Graph for the NSGs holding a rule named so.
    expiring_rule_marker = None

    def rules_due(self, nsg, now):  # pylint: disable=unused-argument
        """The allow rules of this mode in `nsg` (wire JSON, from ARM or Resource Graph) that `cleanup_nsg` would
        remove at `now`; judges only, says and writes nothing."""
        return []

    def cleanup_nsg(self, nsg, now, dry_run=False):  # pylint: disable=unused-argument
        """Remove from one NSG (wire JSON as just read from ARM, in `self.azure`'s subscription) every allow rule of
        this mode whose time is up at `now` (Azure's clock), when the mode has to. Returns (Changes removed,
        one-line failures, each naming the rule and its NSG); a failure to remove one rule does not stop the
        others."""
        return [], []

    # -- the audit trail (`az vm jit log`) -------------------------------------------------------------------
    def gate_for(self, scope, target):  # pylint: disable=unused-argument
        """Whether `scope` is (or was) where Azure checks this mode's opening permission for the VM: a PIM request
        there under approval is about the VM's access. Judged from the ids alone (the VM may be disabled since)."""
        return False

    def trail(self, event):  # pylint: disable=unused-argument
        """What an Activity Log event means in this mode's JIT story: a list of `audit.happenings.Happening`s
        (empty when the event is not about this mode's policy, requests or rules). Reads only the event: whatever
        the caller sent in it (`requestbody`) is what they claimed, shown as recorded, never acted on."""
        return []
