# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""`enable --require-approval`: approval set up in Entra PIM at each VM's gate scope, so that Azure itself refuses
to open a port until a designated approver has said yes.

For each gate scope (`JitMode.approval_scope`: the JIT policy in Defender mode, the VM's NSG in NSG mode):
- the requester role definition (`roles.py`): found by name at the subscription, created when missing; one that
  lacks the action the mode opens access with is refused with the fix;
- the PIM role management policy of that role at that scope: activation needs approval by the approvers (one
  stage), a justification, and lasts at most the JIT policy's maximum duration; eligibility is permanent. Only the
  rules that differ are patched;
- each requester made eligible there, unless already eligible at or above it;
- then the VM's note (`record.py`).

Everything that can refuse is read before anything is written, the JIT policy included (`prepare`): PIM itself
(a tenant without the licence answers `AadPremiumLicenseRequired`), the caller's permission to manage PIM, the role.
A write failing later leaves the JIT policy without (part of) its approval set-up: the same command again finishes
it, since every step compares before it writes. Nothing here depends on the mode: the mode names its scope and the
actions Azure checks there.
"""
import copy
import re
import uuid
from dataclasses import dataclass

from azext_jit.changes import Change
from azext_jit.errors import (AzureFailed, BadInput, ConnectionFailed, JitError, MissingInput, NotAllowed, NotPossible,
                              UsageError)
from azext_jit.log import get_logger
from azext_jit.pim import client, record, roles

logger = get_logger(__name__)

APPROVAL_RULE = 'Approval_EndUser_Assignment'
EXPIRATION_RULE = 'Expiration_EndUser_Assignment'
ENABLEMENT_RULE = 'Enablement_EndUser_Assignment'
ELIGIBILITY_RULE = 'Expiration_Admin_Eligibility'
JUSTIFICATION = 'Justification'

#: The rules the gate sets: id -> (ruleType, caller, level), for a rule the policy does not list yet.
RULE_SHAPES = {
    APPROVAL_RULE: ('RoleManagementPolicyApprovalRule', 'EndUser', 'Assignment'),
    EXPIRATION_RULE: ('RoleManagementPolicyExpirationRule', 'EndUser', 'Assignment'),
    ENABLEMENT_RULE: ('RoleManagementPolicyEnablementRule', 'EndUser', 'Assignment'),
    ELIGIBILITY_RULE: ('RoleManagementPolicyExpirationRule', 'Admin', 'Eligibility'),
}

MANAGE_POLICY = 'Microsoft.Authorization/roleManagementPolicies/write'
MANAGE_ELIGIBILITY = 'Microsoft.Authorization/roleEligibilityScheduleRequests/write'
WRITE_ROLE = 'Microsoft.Authorization/roleDefinitions/write'

NO_PIM_CODES = ('AadPremiumLicenseRequired',)
PIM_NEEDS = ('Approval works through Microsoft Entra Privileged Identity Management (PIM) for Azure resources: the '
             'tenant needs a Microsoft Entra ID P2 or Microsoft Entra ID Governance licence for requesters and '
             'approvers, and setting it up needs Owner or User Access Administrator on the VMs (or Privileged Role '
             'Administrator in Entra ID). Enable JIT without --require-approval, or run this again once PIM is '
             'available.')
HEALS = 'Run the same command again: it finishes the set-up and changes nothing that is already right.'
ELIGIBILITY_JUSTIFICATION = 'az vm jit enable --require-approval: eligible to request JIT VM access'

_GUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', re.I)


@dataclass(frozen=True)
class Approval:
    """What `enable --require-approval` asks for: Entra object ids, lower case, each once."""
    approvers: tuple = ()
    groups: tuple = ()
    requesters: tuple = ()

    def primary_approvers(self):
        return [{'id': oid, 'userType': 'User'} for oid in self.approvers] + \
            [{'id': oid, 'userType': 'Group'} for oid in self.groups]


# -- input ------------------------------------------------------------------------------------------------
def parse_object_ids(values, option):
    """Entra object ids as given (GUIDs), lower case, each once; anything else is refused naming the fix."""
    out = []
    for value in values or []:
        text = str(value).strip()
        if not _GUID.match(text):
            raise BadInput(f"{option}: '{value}' is not a Microsoft Entra object id (a GUID such as "
                           "11111111-2222-3333-4444-555555555555).",
                           'Look it up with `az ad user show --id <name@domain> --query id -o tsv` (a group: '
                           '`az ad group show --group <name> --query id -o tsv`).')
        if text.lower() not in out:
            out.append(text.lower())
    return out


def settings(require_approval, approvers=None, groups=None, requesters=None):
    """The Approval `enable` sets up, or None without --require-approval. Refuses (exit 2, before any call to Azure)
    approval without an approver, and approvers or requesters without --require-approval."""
    given = [name for name, value in (('--approvers', approvers), ('--approver-groups', groups),
                                      ('--requesters', requesters)) if value]
    if not require_approval:
        if given:
            raise UsageError(f"{' and '.join(given)} only apply with --require-approval.",
                             'Add --require-approval to make access wait for an approver, or leave '
                             f"{' and '.join(given)} out.")
        return None
    approvers = parse_object_ids(approvers, '--approvers')
    groups = parse_object_ids(groups, '--approver-groups')
    requesters = parse_object_ids(requesters, '--requesters')
    if not approvers and not groups:
        raise MissingInput('--require-approval needs at least one approver.',
                           'Name them by Entra object id with --approvers USER_ID... and/or --approver-groups '
                           'GROUP_ID...')
    return Approval(tuple(approvers), tuple(groups), tuple(requesters))


# -- pure logic: the policy's rules and who is eligible -------------------------------------------------------
def _by_id(rules):
    return {str(r.get('id', '')).lower(): r for r in rules or () if isinstance(r, dict)}


def _duration(text):
    from azext_jit.durations import parse_duration
    try:
        return parse_duration(str(text), option='maximumDuration')
    except (BadInput, ValueError):
        return None


def _stage(rule):
    stages = ((rule or {}).get('setting') or {}).get('approvalStages') or []
    return stages[0] if len(stages) == 1 and isinstance(stages[0], dict) else None


def _approvers_of(rule):
    stage = _stage(rule) or {}
    return {(str(a.get('id', '')).lower(), str(a.get('userType', '')).lower())
            for a in stage.get('primaryApprovers') or [] if isinstance(a, dict)}


def read_settings(rules):
    """What a role management policy's rules say about activation, as `show` and `enable` report it."""
    found = _by_id(rules)
    approval = found.get(APPROVAL_RULE.lower()) or {}
    setting = approval.get('setting') or {}
    stage = _stage(approval)
    approvers = [a for a in (stage or {}).get('primaryApprovers') or [] if isinstance(a, dict)]
    expiration = found.get(EXPIRATION_RULE.lower()) or {}
    enablement = found.get(ENABLEMENT_RULE.lower()) or {}
    eligibility = found.get(ELIGIBILITY_RULE.lower()) or {}
    enabled = [str(r).lower() for r in enablement.get('enabledRules') or []]
    return {'approvalRequired': setting.get('isApprovalRequired') is True,
            'approvalStages': len(setting.get('approvalStages') or []),
            'approvers': [a.get('id') for a in approvers if str(a.get('userType', '')).lower() == 'user'],
            'approverGroups': [a.get('id') for a in approvers if str(a.get('userType', '')).lower() == 'group'],
            'maximumActivation': expiration.get('maximumDuration'),
            'justificationRequired': JUSTIFICATION.lower() in enabled,
            'permanentEligibility': eligibility.get('isExpirationRequired') is False}


def _shaped(rule_id, current):
    """The current rule (a copy), or a new one of the right type and target when the policy lists none."""
    if current:
        return copy.deepcopy(current)
    rule_type, caller, level = RULE_SHAPES[rule_id]
    return {'id': rule_id, 'ruleType': rule_type,
            'target': {'caller': caller, 'operations': ['All'], 'level': level}}


def _without_nulls(value):
    """JSON without null members (Azure echoes nulls its own schema does not accept back)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def policy_patch(rules, approval, max_activation):
    """The rules to PATCH into a role management policy (whose rules are `rules`) so that activating the role needs
    a justification and the approval of exactly `approval`'s approvers in one stage, lasts at most `max_activation`
    (a timedelta), and eligibility needs no end. Each rule is sent whole, as read with only those settings changed;
    [] when the policy already says all that."""
    from azext_jit.durations import to_iso8601
    found = _by_id(rules)
    out = []

    rule = found.get(APPROVAL_RULE.lower())
    wanted = {(a['id'], a['userType'].lower()) for a in approval.primary_approvers()}
    setting = (rule or {}).get('setting') or {}
    if not (setting.get('isApprovalRequired') is True and _stage(rule) is not None and _approvers_of(rule) == wanted):
        new = _shaped(APPROVAL_RULE, rule)
        setting = new.setdefault('setting', {})
        stage = dict(_stage(new) or (setting.get('approvalStages') or [{}])[0] or {})
        stage['primaryApprovers'] = approval.primary_approvers()
        setting.update({'isApprovalRequired': True, 'approvalMode': 'SingleStage', 'approvalStages': [stage]})
        out.append(new)

    rule = found.get(EXPIRATION_RULE.lower())
    if not (rule and rule.get('isExpirationRequired') is True and _duration(rule.get('maximumDuration')) ==
            max_activation):
        new = _shaped(EXPIRATION_RULE, rule)
        new.update({'isExpirationRequired': True, 'maximumDuration': to_iso8601(max_activation)})
        out.append(new)

    rule = found.get(ENABLEMENT_RULE.lower())
    enabled = [str(r) for r in (rule or {}).get('enabledRules') or []]
    if JUSTIFICATION.lower() not in [r.lower() for r in enabled]:
        new = _shaped(ENABLEMENT_RULE, rule)
        new['enabledRules'] = enabled + [JUSTIFICATION]
        out.append(new)

    rule = found.get(ELIGIBILITY_RULE.lower())
    if not (rule and rule.get('isExpirationRequired') is False):
        new = _shaped(ELIGIBILITY_RULE, rule)
        new['isExpirationRequired'] = False
        out.append(new)
    return [_without_nulls(r) for r in out]


def covers(outer, inner):
    """Whether an assignment at scope `outer` reaches scope `inner` (at or above it), case-insensitively."""
    outer, inner = str(outer or '').rstrip('/').lower(), str(inner or '').rstrip('/').lower()
    return outer == '' or inner == outer or inner.startswith(outer + '/')


def same_role(a, b):
    """Role definition ids compared by their GUID (one id may be subscription-scoped, the other not)."""
    return client.last_segment(a).lower() == client.last_segment(b).lower() != ''


def _same_scope(a, b):
    return str(a or '').rstrip('/').lower() == str(b or '').rstrip('/').lower()


def eligible_principals(instances, role_id, scope):
    """The principal ids the eligibility instances make eligible for `role_id` at exactly `scope`: PIM applies the
    role's settings of the scope an eligibility sits at, so one above the gate scope is not gated by the approval
    set up there (`eligible_above` names those)."""
    out = []
    for item in instances or ():
        props = (item or {}).get('properties') or {}
        pid = str(props.get('principalId') or '').lower()
        if pid and same_role(props.get('roleDefinitionId'), role_id) and _same_scope(props.get('scope'), scope) \
                and pid not in out:
            out.append(pid)
    return out


def eligible_above(instances, role_id, scope):
    """[{principalId, scope}] eligible for `role_id` at a scope above `scope`, where the approval set up at `scope`
    does not apply: their activation there follows whatever PIM's settings for the role say at that scope."""
    out = []
    for item in instances or ():
        props = (item or {}).get('properties') or {}
        pid, where = str(props.get('principalId') or '').lower(), props.get('scope')
        if pid and same_role(props.get('roleDefinitionId'), role_id) and covers(where, scope) and \
                not _same_scope(where, scope) and {'principalId': pid, 'scope': where} not in out:
            out.append({'principalId': pid, 'scope': where})
    return out


def extra_grants(role):
    """What the role definition (wire JSON) grants beyond the README's requester role: actions not in it (wildcards
    included) and any data action. An approved activation would hand requesters those too."""
    allowed = {a.lower() for a in roles.REQUESTER_ACTIONS}
    extras = []
    for entry in ((role or {}).get('properties') or {}).get('permissions') or []:
        if not isinstance(entry, dict):
            continue
        for action in entry.get('actions') or []:
            if str(action).lower() not in allowed and action not in extras:
                extras.append(action)
        extras += [a for a in entry.get('dataActions') or [] if a not in extras]
    return extras


def group_of(scope):
    """The resource group scope (`/subscriptions/S/resourceGroups/RG`) an ARM id lies in, or the id itself."""
    parts = str(scope or '').strip('/').split('/')
    return '/' + '/'.join(parts[:4]) if len(parts) >= 4 and parts[2].lower() == 'resourcegroups' else scope


def missing_actions(role, actions):
    """The actions the role definition (wire JSON) does not grant."""
    permissions = ((role or {}).get('properties') or {}).get('permissions') or []
    return [a for a in actions if not roles.grants(permissions, a)]


def assignable_at(role, scope):
    return any(covers(s, scope) for s in ((role or {}).get('properties') or {}).get('assignableScopes') or [])


def longest_access(policy):
    """The longest access the JIT policy allows: the longest an activation of the requester role needs to last."""
    return max(p.max_duration for p in policy.ports)


# -- the set-up -------------------------------------------------------------------------------------------------
class Gate:
    """The approval set-up of one `enable`: `prepare` reads and refuses before anything is written; `apply` writes
    (or, in a dry run, lists) what differs, once per gate scope, and each VM's note."""

    def __init__(self, azure, approval, max_duration):
        self.azure = azure
        self.approval = approval
        self.max_activation = max_duration
        self.subscription = f'/subscriptions/{azure.subscription_id}'
        self.role = None          # the requester role definition (wire JSON), None while it does not exist
        self.role_name = roles.REQUESTER_ROLE

    # -- reads and refusals, before any write ----------------------------------------------------------------
    def prepare(self, chosen):
        """`chosen`: [(target, mode)]. Finds the requester role and checks it serves every mode, that PIM answers
        here and that the caller may manage it; raises (exit 1, nothing written) otherwise."""
        found = client.role_definitions(self.azure, self.subscription, roles.REQUESTER_ROLE)
        self.role = next((r for r in found if str((r.get('properties') or {}).get('roleName', '')).lower() ==
                          roles.REQUESTER_ROLE.lower()), None)
        if self.role:
            self._check_role(chosen)
        lone = [p for p in self.approval.requesters if (p,) == self.approval.approvers and not self.approval.groups]
        if lone:
            logger.warning('%s is both a requester and the only approver: PIM never lets anyone approve their own '
                           'request, so no request of theirs can be approved. Name another approver.', lone[0])
        self._probe_pim()
        self._check_permissions(chosen)

    def _check_role(self, chosen):
        needed = []
        for _, mode in chosen:
            needed += [a for a in mode.approval_actions if a not in needed]
        extras = extra_grants(self.role)
        if extras:
            shown = ', '.join(map(str, extras[:5])) + (', ...' if len(extras) > 5 else '')
            raise NotPossible(f"The role '{roles.REQUESTER_ROLE}' ({self.role.get('id')}) grants more than the "
                              f"README's requester role ({shown}): an approved activation would give requesters that "
                              'too. Nothing was changed.',
                              'Make it the README role again (`az role definition update --role-definition '
                              '@requester.json`), then run this again.')
        missing = missing_actions(self.role, needed)
        if missing:
            raise NotPossible(f"The role '{roles.REQUESTER_ROLE}' ({self.role.get('id')}) does not grant "
                              f"{', '.join(missing)}, which requesters need to open access on these VMs.",
                              'Update it from the README (`az role definition update --role-definition '
                              '@requester.json`), then run this again.')
        outside = [scope for scope in self._gate_groups(chosen) if not assignable_at(self.role, scope)]
        if outside:
            raise NotPossible(f"The role '{roles.REQUESTER_ROLE}' cannot be assigned at '{outside[0]}' (its "
                              'assignableScopes do not include it).',
                              f"Add '{self.subscription}' to its assignableScopes (see the README), then run this "
                              'again.')

    def _probe_pim(self):
        """One PIM read (the caller's own eligibilities): a tenant without PIM refuses it, before anything is
        written."""
        from azure.core.exceptions import HttpResponseError
        from azext_jit.errors import error_code, error_message, explain_http_error
        try:
            client.eligibility_instances(self.azure, self.subscription, mine=True)
        except HttpResponseError as ex:
            code = error_code(ex)
            if code in NO_PIM_CODES:
                detail = ' '.join(str(error_message(ex)).split())
                raise NotPossible(f'Approval cannot be set up: Azure refused Privileged Identity Management here '
                                  f"({code}: {detail}). Nothing was changed.", PIM_NEEDS) from None
            raise explain_http_error(ex) from ex

    def _check_permissions(self, chosen):
        """The caller may write PIM policies and eligibilities on each resource group (and create the role at the
        subscription when it is missing): Azure's answer, through the permissions API."""
        needed = [(group, a) for group in self._gate_groups(chosen)
                  for a in [MANAGE_POLICY] + ([MANAGE_ELIGIBILITY] if self.approval.requesters else [])]
        if self.role is None:
            needed.append((self.subscription, WRITE_ROLE))
        held = {}
        for scope, action in needed:
            key = scope.lower()
            if key not in held:
                held[key] = client.my_permissions(self.azure, scope)
            if not roles.grants(held[key], action):
                raise NotAllowed(f"Setting up approval needs permission '{action}' on '{scope}', which you do not "
                                 'hold. Nothing was changed.',
                                 'Ask for Owner or User Access Administrator on that scope (or Privileged Role '
                                 f'Administrator in Entra ID). {PIM_NEEDS.split(": ", 1)[0]}.')

    def _gate_groups(self, chosen):
        """The resource groups the VMs' gate scopes lie in (an NSG may sit in another group than its VM), each once."""
        out = []
        for target, mode in chosen:
            scope = group_of(mode.approval_scope(target) or mode.planned_approval_scope(target) or
                             f'{self.subscription}/resourceGroups/{target.resource_group}')
            if scope.lower() not in [o.lower() for o in out]:
                out.append(scope)
        return out

    # -- writes ---------------------------------------------------------------------------------------------
    def apply(self, chosen, dry_run=False):
        """{VM id: [Change]}: the role (once), each gate scope's policy and eligibilities (with its first VM), each
        VM's note. A failure says what is in place and that running the command again finishes it."""
        from azure.core.exceptions import HttpResponseError
        from azext_jit.errors import explain_http_error
        out = {t.id: [] for t, _ in chosen}
        try:
            role_id = self._role(chosen[0][0], out, dry_run) if chosen else None
            done = set()
            for target, mode in chosen:
                scope = (mode.planned_approval_scope(target) if dry_run else
                         mode.approval_scope(target) or mode.planned_approval_scope(target))
                if scope is None:
                    raise NotPossible(f'{target.describe()}: where Azure checks access could not be found.', HEALS)
                if scope.lower() not in done:
                    done.add(scope.lower())
                    out[target.id] += self._policy(target, scope, role_id, dry_run)
                    out[target.id] += self._eligibility(target, scope, role_id, dry_run)
                out[target.id] += record.note(self.azure, target, dry_run)
        except (JitError, HttpResponseError) as ex:
            err = ex if isinstance(ex, JitError) else explain_http_error(ex)
            transient = isinstance(err, (AzureFailed, ConnectionFailed))
            advice = HEALS if transient or not err.recommendation else f'{err.recommendation} {HEALS}'
            raise type(err)(f'{err.message} JIT protects the VMs, but approval is not fully set up yet.',
                            advice) from ex
        return out

    def _role(self, first, out, dry_run):
        """The requester role's id, created from `roles.requester_role_body` when the tenant has none (its name is
        derived from the subscription, so two administrators racing create one role, not two)."""
        if self.role:
            return self.role['id']
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f'{self.subscription.lower()}/{roles.REQUESTER_ROLE}'))
        role_id = f'{self.subscription}{client.AUTH}/roleDefinitions/{name}'
        body = roles.requester_role_body(self.azure.subscription_id)
        out[first.id].append(Change('create', 'role-definition', role_id, first.name,
                                    {'roleName': roles.REQUESTER_ROLE,
                                     'actions': body['properties']['permissions'][0]['actions'],
                                     'assignableScopes': body['properties']['assignableScopes']}, first.id))
        if not dry_run:
            self.role = client.put_role_definition(self.azure, self.subscription, name, body)
            return (self.role or {}).get('id') or role_id
        return role_id

    def _policy(self, target, scope, role_id, dry_run):
        """Patch the role's PIM policy at `scope` where it differs; a Change listing the settings."""
        from azure.core.exceptions import HttpResponseError
        policy_id, rules = None, []
        if self.role is not None:   # a role not created yet (dry run) has the default policy: everything differs
            try:
                assignment = client.policy_assignment(self.azure, scope, role_id)
            except HttpResponseError as ex:
                if not (dry_run and ex.status_code == 404):   # a scope the dry run's enable has not written
                    raise
                assignment = None
            if assignment is None and not dry_run:
                raise AzureFailed(f"PIM shows no role management policy for '{roles.REQUESTER_ROLE}' at {scope}.",
                                  HEALS)
            props = (assignment or {}).get('properties') or {}
            policy_id = props.get('policyId')
            rules = props.get('effectiveRules')
            if rules is None and policy_id:
                rules = ((client.policy(self.azure, policy_id) or {}).get('properties') or {}).get('rules') or []
        patch = policy_patch(rules, self.approval, self.max_activation)
        if not patch:
            return []
        if not dry_run:
            client.patch_policy(self.azure, policy_id, patch)
        from azext_jit.durations import to_iso8601
        return [Change('update', 'pim-policy', policy_id or scope, target.name,
                       {'scope': scope, 'role': roles.REQUESTER_ROLE, 'rules': [r['id'] for r in patch],
                        'approvalRequired': True, 'approvers': list(self.approval.approvers),
                        'approverGroups': list(self.approval.groups),
                        'maximumActivation': to_iso8601(self.max_activation), 'justificationRequired': True,
                        'permanentEligibility': True}, target.id)]

    def _assign(self, scope, principal, role_id):
        """Make one principal eligible; False when PIM says it already is (its list can lag a concurrent enable)."""
        from azure.core.exceptions import HttpResponseError
        from azext_jit.errors import error_code
        from azext_jit.times import stamp
        try:
            client.assign_eligibility(self.azure, scope, principal, role_id, ELIGIBILITY_JUSTIFICATION,
                                      stamp(self.azure.now()))
        except HttpResponseError as ex:
            if error_code(ex) == 'RoleAssignmentExists':
                return False
            raise
        return True

    def _eligibility(self, target, scope, role_id, dry_run):
        """Make each requester eligible for the role at `scope`, unless already eligible there."""
        from azure.core.exceptions import HttpResponseError
        if not self.approval.requesters:
            return []
        eligible = []
        if self.role is not None:
            try:
                eligible = eligible_principals(client.eligibilities_at(self.azure, scope), role_id, scope)
            except HttpResponseError as ex:
                if not (dry_run and ex.status_code == 404):
                    raise
        changes = []
        for principal in self.approval.requesters:
            if principal in eligible:
                continue
            if not dry_run and not self._assign(scope, principal, role_id):
                continue
            changes.append(Change('create', 'eligibility', scope, target.name,
                                  {'principalId': principal, 'role': roles.REQUESTER_ROLE, 'scope': scope,
                                   'expiration': 'NoExpiration'}, target.id))
        return changes
