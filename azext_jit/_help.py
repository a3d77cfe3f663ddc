# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Help text. Loaded on every `az vm ...` call: no SDK imports."""
from knack.help_files import helps  # pylint: disable=unused-import

helps['vm jit'] = """
type: group
short-summary: Just-In-Time access to a VM's management ports (SSH, RDP).
long-summary: >
    Management ports stay closed behind a deny rule. You ask for access from one source for a bounded time,
    the request is checked against the VM's policy, an allow rule opens, and it closes again by itself.
    Works through Defender for Cloud's JIT policies where the subscription has Defender for Servers Plan 2,
    and directly on the VM's network security group where it does not (--mode).
"""

helps['vm jit enable'] = """
type: command
short-summary: Protect VMs' management ports with JIT.
long-summary: >
    Running it twice with the same settings changes nothing; other VMs in the same policy are never dropped.
    Rules that let any source reach a protected port are removed (after asking; --yes for scripts) and
    recorded, so that `az vm jit disable` puts them back. Narrower rules are named in a warning.
    With --require-approval, access waits for an approver through Entra PIM: the requester role, its PIM
    settings (approval, justification, maximum activation) and the requesters' eligibility are set where Azure
    checks the permission that opens a port (the JIT policy in Defender mode, the VM's NSG in NSG mode).
examples:
  - name: Protect SSH and RDP of one VM (defaults - 3 hours at most, one address or a narrow range per request).
    text: az vm jit enable --resource-group MyResourceGroup --vm MyVM --ports 3389 22
  - name: Protect SSH for 1 hour at most, from the corporate range only.
    text: az vm jit enable -g MyResourceGroup -n MyVM --ports 22/tcp --max-duration 1h --allowed-sources 10.0.0.0/8
  - name: Protect every VM of a resource group, in a script, showing the changes first.
    text: |
        az vm jit enable -g MyResourceGroup --dry-run
        az vm jit enable -g MyResourceGroup --yes
  - name: Make access wait for an approver (Entra PIM), with requesters made eligible; ids are Entra object ids.
    text: >
        az vm jit enable -g MyResourceGroup -n MyVM --require-approval
        --approvers 11111111-1111-1111-1111-111111111111 --approver-groups 22222222-2222-2222-2222-222222222222
        --requesters 33333333-3333-3333-3333-333333333333
"""

helps['vm jit show'] = """
type: command
short-summary: Show a VM's JIT configuration, its mode, protecting rules and requests.
long-summary: >
    Also names public IPs on other NICs or IP configurations, which JIT does not guard
    (unprotectedPublicIps; the VM is not protected while one lets any source reach a protected port), and,
    in NSG mode, whether Azure's Activity Log names the requestor each request's rule claims (requestorCheck).
    Under approval, the approval section gives PIM's settings, the eligible requesters, the pending requests
    and who can open access without approval (bypassApproval).
examples:
  - name: Show the JIT state of a VM.
    text: az vm jit show -g MyResourceGroup -n MyVM
  - name: Is JIT on?
    text: az vm jit show -g MyResourceGroup -n MyVM --query enabled
"""

helps['vm jit list'] = """
type: command
short-summary: List JIT-enabled VMs and their requests in a resource group, the subscription, or many subscriptions.
long-summary: >
    With --subscriptions or --all-subscriptions, VMs, NICs and NSGs are read through Azure Resource Graph (a few
    paged queries, whatever the number of VMs; its data can be a few minutes old) and Defender's JIT policies with
    one list per subscription; each VM's entry then names its subscription.
examples:
  - name: Active access in a resource group, as a table.
    text: az vm jit list --resource-group MyResourceGroup --status active -o table
  - name: Every JIT-enabled VM of the subscription.
    text: az vm jit list --query "[].vm"
  - name: Requests under approval that wait for your decision, and your own still waiting (waitingFor).
    text: az vm jit list --status pending -o table
  - name: Open access right now, in every subscription you can see.
    text: az vm jit list --all-subscriptions --status active -o table
"""

helps['vm jit exposure'] = """
type: command
short-summary: Find VMs whose management ports the internet can reach, and whether JIT protects them.
long-summary: >
    Reads every VM, NIC, public IP, NSG and VNet of the subscriptions (or management groups) through Azure
    Resource Graph in a few paged queries. A VM is exposed on a port when one of its IP configurations has a public
    IP and both NSGs on the path (the subnet's, then the NIC's, each in priority order with its default rules) let
    the internet in: a source of *, Any, Internet, AzureCloud (any Azure customer), 0.0.0.0/0, ::/0, or a public
    range of /16 or wider (/48 for IPv6). A deny rule ahead saves the door only when its source is any. With no
    NSG on the NIC or subnet, a Basic public IP is open and a Standard one closed. Each row names the rules that
    let it in and the VM's JIT mode, if any; a summary line goes to standard error. --protect runs `az vm jit
    enable` (with --ports and enable's defaults) on every exposed VM without JIT, each read fresh from
    ARM first; it asks before removing rules, as enable does (--yes for scripts, --dry-run to see the changes).
    Doors Resource Graph does not show enough of (an NSG outside the scope or not readable) are rows of status
    unknown. Not covered - ports opened through a load balancer's rules, an Azure Firewall or an application
    gateway, and traffic a route table sends in through the VirtualNetwork service tag.
examples:
  - name: Exposed VMs of the current subscription, as a table.
    text: az vm jit exposure -o table
  - name: Exposed VMs of every subscription you can see, checking SSH, RDP and WinRM.
    text: az vm jit exposure --all-subscriptions --ports 22 3389 5986
  - name: VMs below a management group that are exposed and have no JIT (their ids).
    text: az vm jit exposure --management-groups Contoso-Prod --query "[?!jit.enabled].id" -o tsv
  - name: See what enabling JIT on every exposed VM would change, then do it.
    text: |
        az vm jit exposure --all-subscriptions --protect --dry-run
        az vm jit exposure --all-subscriptions --protect --yes
"""

helps['vm jit request'] = """
type: command
short-summary: Ask for access to a VM's protected ports.
long-summary: >
    Refused before anything is written when a port is not in the policy, the duration exceeds the maximum,
    the source lies outside the allowed sources, you already hold 4 open requests on the VM, or the VM
    would have more than 50 open ports. Access is open when the command returns; its output says how to
    connect and when access ends. The justification is kept with the request (in NSG mode in the allow
    rule's description, shortened to fit Azure's 140 characters). On a VM under approval, unless Azure lets
    you open access directly, the command files a Microsoft Entra PIM request and returns its id (pending):
    --wait waits for the approver and opens, --request-id opens an approved request later.
examples:
  - name: Open RDP for 60 minutes from your own public IP.
    text: az vm jit request --resource-group MyResourceGroup --vm MyVM --ports 3389 --duration 60
  - name: Open SSH for 2 hours from a given address, with a reason.
    text: >
        az vm jit request -g MyResourceGroup -n MyVM --ports 22 --duration 2h --source 198.51.100.7
        --justification "patching"
  - name: On a VM under approval, ask and wait (at most 30 minutes) for an approver; access opens once approved.
    text: az vm jit request -g MyResourceGroup -n MyVM --ports 22 --justification "INC0042" --wait --timeout 30m
  - name: On a VM under approval, open an approved request later (its id from the first command's output).
    text: az vm jit request -g MyResourceGroup -n MyVM --request-id 00000000-0000-0000-0000-000000000000
"""

helps['vm jit approve'] = """
type: command
short-summary: Approve a request for access to a VM under approval (you must be one of its approvers).
long-summary: >
    Goes through Microsoft Entra PIM: PIM decides who may approve (a designated approver, directly or through a
    group; never the requester) and refuses a request already decided or expired. What the request asks (VM,
    ports, source, duration, requester, reason) is shown first and you are asked to confirm; --yes for scripts.
    Once approved, the requester's `az vm jit request --request-id` (or a waiting `--wait`) opens the access.
examples:
  - name: Approve a request (see those waiting for your decision with `az vm jit list --status pending`).
    text: az vm jit approve --request-id 00000000-0000-0000-0000-000000000000 --reason "CHG-7"
  - name: Approve from a script, without the confirmation.
    text: az vm jit approve --request-id 00000000-0000-0000-0000-000000000000 --yes
"""

helps['vm jit deny'] = """
type: command
short-summary: Deny a request for access to a VM under approval, saying why (you must be one of its approvers).
long-summary: >
    Goes through Microsoft Entra PIM, like `approve`; the requester sees your reason. Nothing opens.
examples:
  - name: Deny a request in a script.
    text: az vm jit deny --request-id 00000000-0000-0000-0000-000000000000 --reason "no change ticket" --yes
"""

helps['vm jit revoke'] = """
type: command
short-summary: Close a VM's open access now.
long-summary: >
    By default only the access you requested on the VM is closed; --request-id closes one request, whoever
    made it, and --all closes everyone's. Access that has already expired or been revoked is not an error.
examples:
  - name: Close your own open access to a VM.
    text: az vm jit revoke --resource-group MyResourceGroup --vm MyVM
  - name: Close only SSH of your own access.
    text: az vm jit revoke -g MyResourceGroup -n MyVM --ports 22
  - name: Close one request (its id from `az vm jit show`).
    text: az vm jit revoke -g MyResourceGroup -n MyVM --request-id 1a2b3c4d
  - name: Close everyone's open access to a VM.
    text: az vm jit revoke -g MyResourceGroup -n MyVM --all
"""

helps['vm jit disable'] = """
type: command
short-summary: Take a VM out of JIT.
long-summary: >
    Its policy entry and protecting rules go, and the rules `enable` removed from this VM come back, after a
    confirmation that lists them. Under approval, the VM's approval note goes; PIM's eligibilities and role
    settings stay (other VMs may share that scope).
examples:
  - name: Disable JIT on a VM from a script.
    text: az vm jit disable -g MyResourceGroup -n MyVM --yes
"""

helps['vm jit cleanup'] = """
type: command
short-summary: Remove expired JIT allow rules in a resource group, the subscription, or many subscriptions.
long-summary: >
    Safe to run from a schedule, from any machine, at the same time as other commands. With --subscriptions or
    --all-subscriptions, Azure Resource Graph finds the NSGs holding JIT allow rules in a few paged queries; each
    such NSG is then read fresh from ARM and only what is still expired is removed, NSGs in parallel (one write at
    a time per NSG, as Azure allows). A rule that cannot be removed is named, and the others still go.
examples:
  - name: See what would be removed.
    text: az vm jit cleanup -g MyResourceGroup --dry-run
  - name: Clean up the whole subscription.
    text: az vm jit cleanup
  - name: Clean up every subscription you can see, from a schedule.
    text: az vm jit cleanup --all-subscriptions --only-show-errors
"""

helps['vm jit log'] = """
type: command
short-summary: The JIT audit trail of a VM or a resource group, from the Activity Log and PIM's approval records.
long-summary: >
    Who configured JIT, who asked for access (ports, source, end time, why), who approved or denied it, when it
    opened and when it closed (revoked, expired, cleaned up), and who disabled JIT, oldest first: one entry per
    request, its events inside. Callers are named as Azure names them (a user's UPN, an application's id, a managed
    identity's resource); Defender for Cloud's own rule writes are Defender's. PIM shows who decided on a request
    only to its approvers and its requester: for others `approverVisible` is false. The Activity Log keeps 90 days
    and is minutes behind: the newest events may not be in it yet. README "Keeping the trail" shows how to keep it
    longer.
examples:
  - name: What happened on a VM in the last 7 days.
    text: az vm jit log -g MyResourceGroup -n MyVM -o table
  - name: A resource group's trail of the last 30 days.
    text: az vm jit log -g MyResourceGroup --offset 30d
  - name: One day, as JSON for a report.
    text: az vm jit log -g MyResourceGroup -n MyVM --start-time 2026-11-30T00:00:00Z --end-time 2026-12-01T00:00:00Z
  - name: Who approved each request.
    text: az vm jit log -g MyResourceGroup -n MyVM --query "[?action=='request'].[time, caller, approver, result]"
"""
