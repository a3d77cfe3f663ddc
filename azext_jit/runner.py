"""The unattended cleanup runner: expired JIT allow rules removed on a schedule, with no `az login`.

In NSG mode nobody but the extension removes a rule when its time is up. `az vm jit cleanup` does it for
a person; this runner does it for cron, a container job or an Azure Functions timer. It authenticates with
azure-identity's DefaultAzureCredential (a managed identity in Azure; environment variables or a
developer login elsewhere) and runs the same cleanup code as the command.

    python -m azext_jit.runner --subscription <id> [--resource-group <rg>] [--dry-run]

Install: `pip install "jit-1.0.0b1-py3-none-any.whl[runner]"`. The identity needs, on the subscription or
resource group: Microsoft.Network/networkSecurityGroups/read and .../securityRules/delete (the built-in
"Network Contributor" role has both; the README has a narrower custom role).
Exit code 0 when every expired rule was removed (or none was due), 1 when some removal failed.
"""
import argparse
import json
import os
import sys

PUBLIC_ARM = 'https://management.azure.com'


def cleanup_once(subscription_id, resource_group=None, dry_run=False, credential=None, arm_endpoint=None):
    """Remove expired JIT allow rules once; returns the summary dict `az vm jit cleanup` returns."""
    from azext_jit.arm import Azure
    from azext_jit.cleanup import cleanup
    if credential is None:
        from azure.identity import DefaultAzureCredential
        credential = DefaultAzureCredential()
    endpoint = arm_endpoint or os.environ.get('AZURE_JIT_ARM_ENDPOINT') or PUBLIC_ARM
    azure = Azure.from_credential(credential, subscription_id, base_url=None if endpoint == PUBLIC_ARM else endpoint)
    return cleanup(azure, resource_group, dry_run)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m azext_jit.runner', description=__doc__.split('\n\n')[0])
    parser.add_argument('--subscription', default=os.environ.get('AZURE_SUBSCRIPTION_ID'), required=False,
                        help='subscription to clean (default: $AZURE_SUBSCRIPTION_ID)')
    parser.add_argument('--resource-group', help='only this resource group (default: the whole subscription)')
    parser.add_argument('--dry-run', action='store_true', help='list what would be removed, remove nothing')
    parser.add_argument('--arm-endpoint', help='Azure Resource Manager endpoint (default: the public cloud)')
    args = parser.parse_args(argv)
    if not args.subscription:
        parser.error('give --subscription or set AZURE_SUBSCRIPTION_ID')
    import logging
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    summary = cleanup_once(args.subscription, args.resource_group, args.dry_run, arm_endpoint=args.arm_endpoint)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return 1 if summary.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
