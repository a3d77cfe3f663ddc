#!/usr/bin/env python
# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Packaging for the `jit` Azure CLI extension (`az vm jit`)."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

VERSION = '1.0.0b1'

CLASSIFIERS = [
    'Development Status :: 4 - Beta',
    'Intended Audience :: System Administrators',
    'Programming Language :: Python :: 3',
    'Programming Language :: Python :: 3.9',
    'Programming Language :: Python :: 3.10',
    'Programming Language :: Python :: 3.11',
    'Programming Language :: Python :: 3.12',
]

# The extension talks to ARM over plain REST on azure-core's pipeline (`azext_jit/rest.py`), with azure-mgmt-core's
# ARM pipeline and long-running-operation polling, and imports no SDK's operations or models. Inside az it declares
# nothing: azure-cli brings azure-mgmt-core (and azure-core, requests), and `az extension add` installs every declared
# dependency again into the extension's own directory (`pip install --target`), from the network. The unattended
# cleanup runner runs outside `az` (`pip install "jit-1.0.0b1-py3-none-any.whl[runner]"`): it needs azure-mgmt-core and
# azure-identity, nothing more, and never azure-cli-core.
DEPENDENCIES = []
EXTRAS = {'runner': ['azure-mgmt-core>=1.4.0,<2', 'azure-identity>=1.15.0']}

# The wheel's description is the README's opening, not the whole manual: az reads every installed extension's
# metadata (twice) on each `az vm ...` call, and the manual and history made it 78 KB.
with open(os.path.join(HERE, 'README.md'), 'r', encoding='utf-8') as f:
    DESCRIPTION = f.read().split('\n## ', 1)[0].rstrip() + (
        '\n\nThe manual (commands, modes, permissions, the unattended cleanup runner) is the README.md of the source, '
        'and the release history its HISTORY.rst.\n')

setup(
    name='jit',
    version=VERSION,
    description='Just-In-Time access to virtual machines (az vm jit): open SSH/RDP from one source for a '
                'bounded time, with approval and audit.',
    long_description=DESCRIPTION,
    long_description_content_type='text/markdown',
    license='MIT',
    author='az vm jit maintainers',
    url='https://github.com/Azure/azure-cli-extensions',
    classifiers=CLASSIFIERS,
    packages=find_packages(exclude=['tests', 'tests.*']),
    install_requires=DEPENDENCIES,
    extras_require=EXTRAS,
    package_data={'azext_jit': ['azext_metadata.json']},
    python_requires='>=3.9',
)
