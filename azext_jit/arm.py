# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The Azure a command talks to: the ARM APIs of one subscription, and Azure's own clock.

Every call is plain ARM REST on the SDK's own pipeline (`rest.RestClient`: sign-in, retries, `--debug`, user agent),
grouped and named as the SDKs' operation groups name them (`azure.compute.virtual_machines.get`, `azure.security.
jit_network_access_policies.initiate`, ...), answering the JSON Azure sent. No SDK's operations or models are
imported: they cost 65 ms (azure-mgmt-security) to a third of a second (azure-mgmt-network) of CPU per command, for
objects the extension would only turn back into that JSON.

Two ways in: `Azure.from_cli(cmd)` inside `az` (honours `az login`, the cloud and `--subscription`), and
`Azure.from_credential(...)` for the unattended cleanup runner (azure-identity, no `az` at all).

Expiry is judged by Azure's clock, read from the `Date` header of every ARM answer, not by the local
machine's: a request opened from one machine and cleaned up from another agree on when it ends, even when
one of the machines' clocks is wrong.
"""
import datetime as dt
import email.utils
import threading
import time


class AzureClock:
    """Azure's time: the last `Date` header seen, advanced by the local monotonic clock since."""

    def __init__(self):
        self._state = None   # (the Date seen, the monotonic time it was seen): one value, so threads read a pair
        self.skew_warning_sent = False

    def observe(self, pipeline_response):
        date = pipeline_response.http_response.headers.get('Date')
        if not date:
            return
        try:
            self._state = (email.utils.parsedate_to_datetime(date).astimezone(dt.timezone.utc), time.monotonic())
        except (TypeError, ValueError):
            pass

    def now(self):
        state = self._state
        if state is None:
            return dt.datetime.now(dt.timezone.utc)
        return state[0] + dt.timedelta(seconds=time.monotonic() - state[1])


class Azure:  # pylint: disable=too-many-instance-attributes  # the sign-in, the clock, and one cache per kind
    """The ARM APIs of one subscription (over one `RestClient`), sharing one AzureClock."""

    def __init__(self, factory, subscription_id, clock=None):
        self._factory = factory   # factory(client type, subscription id, **kwargs): a client bound to that subscription
        self.subscription_id = subscription_id
        self.clock = clock or AzureClock()
        self._clients = {}
        self.nsgs = {}   # NSGs read during this command (nsg_ops keeps it truthful)
        self.staged_deletes = {}   # VM id (lower) -> tag names to delete with its next tag deletion (`vm_records`)
        self._others = {subscription_id.lower(): self}
        # Fleet commands work on many NSGs at once (`fleet/parallel.py`): clients and subscriptions are made once.
        self._lock = threading.RLock()

    def detached(self):
        """The same sign-in and clock with caches of its own: what a fleet read fills from Resource Graph (NSGs, a
        minute or more behind ARM) is never what a write in the same command reads."""
        return Azure(self._factory, self.subscription_id, self.clock)

    def for_subscription(self, subscription_id):
        """The same sign-in and clock, bound to another subscription (fleet commands: one per subscription they
        write to or read per-subscription APIs of). Created once per command and subscription."""
        key = subscription_id.lower()
        with self._lock:
            if key not in self._others:
                other = Azure(self._factory, subscription_id, self.clock)
                # pylint: disable=protected-access  # one family shares them
                other._others, other._lock = self._others, self._lock
                self._others[key] = other
            return self._others[key]

    @classmethod
    def from_cli(cls, cmd):
        from azure.cli.core.commands.client_factory import get_mgmt_service_client, get_subscription_id
        clock_holder = {}

        def factory(client_type, subscription_id, **kwargs):
            return get_mgmt_service_client(cmd.cli_ctx, client_type, subscription_id=subscription_id,
                                           raw_response_hook=clock_holder['clock'].observe, **kwargs)
        azure = cls(factory, get_subscription_id(cmd.cli_ctx))
        clock_holder['clock'] = azure.clock
        return azure

    @classmethod
    def from_credential(cls, credential, subscription_id, base_url=None):
        """For code outside `az` (the cleanup runner): any azure-identity credential."""
        clock_holder = {}

        def factory(client_type, subscription, **kwargs):
            extra = {}
            if base_url:
                extra['base_url'] = base_url
                extra['credential_scopes'] = [f"{base_url.rstrip('/')}/.default"]
            return client_type(credential, subscription, raw_response_hook=clock_holder['clock'].observe,
                               **extra, **kwargs)
        azure = cls(factory, subscription_id)
        clock_holder['clock'] = azure.clock
        return azure

    def _client(self, name, make):
        client = self._clients.get(name)
        if client is None:
            with self._lock:
                if name not in self._clients:
                    self._clients[name] = make()
                client = self._clients[name]
        return client

    @property
    def compute(self):
        """VM reads over plain REST (`ComputeReads`): importing azure-mgmt-compute's operations and models for a VM
        GET cost about 0.1 s of CPU in every command, and the JSON is what the extension reads anyway."""
        return self._client('compute-reads', lambda: ComputeReads(self))

    @property
    def network(self):
        """The network operations the extension uses, over plain REST on the SDK's pipeline (`NetworkReads`): reads,
        and rule writes with azure-mgmt-core's long-running-operation polling. Importing azure-mgmt-network (its
        models) cost about a third of a second of CPU in every command that wrote a rule; the JSON is what the
        extension works with anyway."""
        return self._client('network-reads', lambda: NetworkReads(self))

    @property
    def security(self):
        """Defender for Cloud's JIT policies and pricings over plain REST (`SecurityCalls`): azure-mgmt-security's
        client and models cost about 65 ms of every Defender-mode command to import, for JSON the extension reads
        and writes as it is."""
        return self._client('security', lambda: SecurityCalls(self))

    @property
    def tags(self):
        """The Tags API at any scope over plain REST (`TagCalls`): azure-mgmt-resource cost about 0.13 s of every
        command that wrote a VM's tags to import."""
        return self._client('tags', lambda: TagCalls(self))

    @property
    def rest(self):
        """Plain ARM REST (`rest.RestClient`) for the Microsoft.Authorization APIs that approval uses."""
        from azext_jit.rest import RestClient
        return self._client('rest', lambda: self._factory(RestClient, self.subscription_id))

    def now(self):
        return self.clock.now()


NETWORK_API = '2026-03-01'   # what azure-mgmt-network 33.1 sends: reads and writes speak the same version
COMPUTE_API = '2024-11-01'   # what azure-mgmt-compute (bundled with az) sends for virtual machines
JIT_API = '2020-01-01'       # Defender's jitNetworkAccessPolicies: the one version azure-mgmt-security 6 sends
PRICING_API = '2023-01-01'   # Defender's pricings, as azure-mgmt-security 6 sends (shows subPlan)
TAGS_API = '2024-11-01'      # Microsoft.Resources/tags at a scope, as az's resource profile sends


class _Reads:
    """One network resource type's reads, as the SDK's operation group names them: the JSON Azure sent."""

    def __init__(self, azure, kind, provider='Microsoft.Network', api_version=NETWORK_API):
        self._azure = azure
        self._kind = kind
        self._provider = provider
        self._api = api_version

    def _base(self, resource_group_name=None):
        group = f'/resourceGroups/{resource_group_name}' if resource_group_name else ''
        return f'/subscriptions/{self._azure.subscription_id}{group}/providers/{self._provider}/{self._kind}'

    def get(self, resource_group_name, name, expand=None):
        query = {'$expand': expand} if expand else {}
        return self._azure.rest.get(f'{self._base(resource_group_name)}/{name}', self._api, **query)

    def list(self, resource_group_name):
        return self._azure.rest.list(self._base(resource_group_name), self._api)

    def list_all(self):
        return self._azure.rest.list(self._base(), self._api)


class ComputeReads:  # pylint: disable=too-few-public-methods  # operation groups, as attributes
    """`azure.compute`: virtual machines read over plain ARM REST on the SDK's pipeline, as
    `virtual_machines.get(group, name)`, `.list(group)` and `.list_all()` (the JSON Azure sent)."""

    def __init__(self, azure):
        self.virtual_machines = _Reads(azure, 'virtualMachines', 'Microsoft.Compute', COMPUTE_API)


class _SubnetReads:  # pylint: disable=too-few-public-methods  # as the SDK's operation group
    """Subnets, read as `subnets.get(group, virtual network, subnet)`."""

    def __init__(self, azure):
        self._vnets = _Reads(azure, 'virtualNetworks')

    def get(self, resource_group_name, virtual_network_name, subnet_name):
        return self._vnets.get(resource_group_name, f'{virtual_network_name}/subnets/{subnet_name}')


class NetworkReads:  # pylint: disable=too-few-public-methods  # operation groups, as attributes
    """`azure.network`: NICs, subnets and NSGs read over plain ARM REST on the SDK's pipeline (sign-in, retries,
    `--debug`, Azure's clock); `security_rules`: rule writes with ARM's long-running-operation polling."""

    def __init__(self, azure):
        self.network_interfaces = _Reads(azure, 'networkInterfaces')
        self.network_security_groups = _Reads(azure, 'networkSecurityGroups')
        self.subnets = _SubnetReads(azure)
        self._azure = azure

    @property
    def security_rules(self):
        return _RuleWrites(self._azure)


class _RuleWrites:
    """`security_rules.begin_create_or_update(group, nsg, rule, body)` and `.begin_delete(group, nsg, rule)` as the
    SDK's operation group has them: the write, then ARM's long-running-operation polling (`RestClient.begin`), with
    the status codes the Network RP answers (PUT 200/201, DELETE 200/202/204). A PUT's result is the rule as Azure
    accepted it, once its operation Succeeded: no GET of the rule after it (the extension knows what it wrote; the
    SDK's poller would read it once more)."""

    def __init__(self, azure):
        self._azure = azure

    def _path(self, resource_group_name, nsg_name, rule_name):
        return (f'/subscriptions/{self._azure.subscription_id}/resourceGroups/{resource_group_name}/providers/'
                f'Microsoft.Network/networkSecurityGroups/{nsg_name}/securityRules/{rule_name}')

    def begin_create_or_update(self, resource_group_name, nsg_name, rule_name, body):
        return self._azure.rest.begin('PUT', self._path(resource_group_name, nsg_name, rule_name), NETWORK_API,
                                      body=body, expected=(200, 201), final_read=False)

    def begin_delete(self, resource_group_name, nsg_name, rule_name):
        return self._azure.rest.begin('DELETE', self._path(resource_group_name, nsg_name, rule_name), NETWORK_API,
                                      expected=(200, 202, 204))


class _JitPolicies:
    """`jit_network_access_policies`: Defender's JIT policies by the SDK operation group's names, over REST."""

    def __init__(self, azure):
        self._azure = azure

    def _base(self, resource_group_name=None, location=None):
        group = f'/resourceGroups/{resource_group_name}' if resource_group_name else ''
        region = f'/locations/{location}' if location else ''
        return (f'/subscriptions/{self._azure.subscription_id}{group}/providers/Microsoft.Security{region}'
                '/jitNetworkAccessPolicies')

    def list(self):
        return self._azure.rest.list(self._base(), JIT_API, max_pages=MAX_POLICY_PAGES, on_cut=_policies_cut)

    def list_by_resource_group(self, resource_group_name):
        return self._azure.rest.list(self._base(resource_group_name), JIT_API, max_pages=MAX_POLICY_PAGES,
                                     on_cut=_policies_cut)

    def list_by_resource_group_and_region(self, resource_group_name, location):
        return self._azure.rest.list(self._base(resource_group_name, location), JIT_API,
                                     max_pages=MAX_POLICY_PAGES, on_cut=_policies_cut)

    def get(self, resource_group_name, location, name):
        return self._azure.rest.get(f'{self._base(resource_group_name, location)}/{name}', JIT_API)

    def create_or_update(self, resource_group_name, location, name, body):
        return self._azure.rest.put(f'{self._base(resource_group_name, location)}/{name}', JIT_API, body)

    def delete(self, resource_group_name, location, name):
        return self._azure.rest.send('DELETE', f'{self._base(resource_group_name, location)}/{name}', JIT_API)

    def initiate(self, resource_group_name, location, name, body):
        return self._azure.rest.post(f'{self._base(resource_group_name, location)}/{name}/initiate', JIT_API, body)


MAX_POLICY_PAGES = 1000   # Defender pages its policy lists; a subscription holds one policy per group and region


def _policies_cut(pages):
    from azext_jit.errors import AzureFailed
    raise AzureFailed(f"Defender's list of JIT policies did not end after {pages} pages.",
                      'Run the command again; if it persists, narrow it with -g.')


class _Pricings:  # pylint: disable=too-few-public-methods  # as the SDK's operation group
    def __init__(self, azure):
        self._azure = azure

    def get(self, name):
        return self._azure.rest.get(
            f'/subscriptions/{self._azure.subscription_id}/providers/Microsoft.Security/pricings/{name}', PRICING_API)


class SecurityCalls:  # pylint: disable=too-few-public-methods  # operation groups, as attributes
    """`azure.security`: Defender for Cloud's `jit_network_access_policies` and `pricings`, as the SDK's operation
    groups name them, over plain ARM REST on the SDK's pipeline; answers and bodies are the JSON Azure speaks."""

    def __init__(self, azure):
        self.jit_network_access_policies = _JitPolicies(azure)
        self.pricings = _Pricings(azure)


class TagCalls:  # pylint: disable=too-few-public-methods
    """`azure.tags.update_at_scope(scope, operation, tags)`: Tags_UpdateAtScope (`PATCH {scope}/providers/
    Microsoft.Resources/tags/default`), Merge or Delete; a long-running operation in this API version (200, or 202
    and its polling)."""

    def __init__(self, azure):
        self._azure = azure

    def update_at_scope(self, scope, operation, tags):
        poller = self._azure.rest.begin('PATCH', f"{scope.rstrip('/')}/providers/Microsoft.Resources/tags/default",
                                        TAGS_API, body={'operation': operation, 'properties': {'tags': tags}},
                                        expected=(200, 202))
        return poller.result()
