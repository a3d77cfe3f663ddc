# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Run the local Azure stand-in from a shell, for people to try the product without an Azure account.

    python -m tests.standin --env-file /tmp/standin.env [--port 0] [--no-defender]

It serves HTTPS on 127.0.0.1, seeds a small estate (resource group MyResourceGroup with VMs MyVM, which
has its NSG on the NIC, and SubnetVM, whose NSG sits on its subnet; in a second subscription, LegacyVM with no NSG
behind a Basic public IP; identities admin (Owner of both), requester and reader)
and writes an env file with everything `az` needs: the CA to trust, the endpoints to register as a cloud,
and each identity's credentials. It runs until interrupted (SIGINT/SIGTERM).
"""
import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading

from .app import Standin
from . import security


SECOND_SUBSCRIPTION = '00000000-0000-0000-0000-0000000000b2'


def seed(standin):
    standin.add_test_identities()
    open_ssh = {'name': 'AllowSSHFromAnywhere', 'properties': {
        'priority': 300, 'direction': 'Inbound', 'access': 'Allow', 'protocol': 'Tcp', 'sourcePortRange': '*',
        'destinationPortRange': '22', 'sourceAddressPrefix': '*', 'destinationAddressPrefix': '*',
        'description': 'Left open by the team that built the VM'}}
    standin.vm('MyResourceGroup', 'MyVM', nsg='nic', rules=[open_ssh])
    standin.vm('MyResourceGroup', 'SubnetVM', nsg='subnet')
    # A second subscription, where the admin is Owner too: a VM left with no NSG behind a Basic public IP, which
    # `az vm jit exposure --all-subscriptions` finds.
    world = standin.world
    second = world.add_subscription(SECOND_SUBSCRIPTION, 'JIT Test Subscription 2')
    world.assign(world.identities['admin'], 'Owner', '/subscriptions/' + second)
    legacy = standin.vm('LegacyGroup', 'LegacyVM', nsg=None, subscription=second)
    world.get(world.get(legacy['nic_ids'][0])['properties']['ipConfigurations'][0]['properties']['publicIPAddress']
              ['id'])['sku']['name'] = 'Basic'


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.standin', description=__doc__.split('\n\n')[0])
    parser.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (default: any free port)')
    parser.add_argument('--env-file', required=True, help='where to write the settings for az')
    parser.add_argument('--no-defender', action='store_true', help='start with Defender for Servers off')
    parser.add_argument('--dir', help='where to keep the CA and certificates (default: a temp dir)')
    args = parser.parse_args(argv)

    standin = Standin(args.dir or tempfile.mkdtemp(prefix='standin-'), args.port)
    seed(standin)
    if args.no_defender:
        security.set_defender_plan(standin.world, False)
    standin.start()
    ids = standin.world.identities
    lines = {'STANDIN_URL': standin.base_url, 'STANDIN_CA': standin.ca_path, 'STANDIN_PID': str(os.getpid()),
             'STANDIN_TENANT': standin.world.tenant_id, 'STANDIN_SUBSCRIPTION': standin.sub}
    for name, ident in ids.items():
        key = name.upper().replace('-', '_')
        lines['STANDIN_{}_ID'.format(key)] = ident.client_id
        lines['STANDIN_{}_SECRET'.format(key)] = ident.secret
    # Written aside and renamed into place: whoever waits for the file never reads half of it.
    partial = args.env_file + '.partial'
    with open(partial, 'w') as f:
        f.write(''.join('{}={}\n'.format(k, shlex.quote(v)) for k, v in lines.items()))
    os.replace(partial, args.env_file)
    sys.stderr.write('stand-in listening on {} (pid {})\n'.format(standin.base_url, os.getpid()))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    standin.stop()


if __name__ == '__main__':
    main()
