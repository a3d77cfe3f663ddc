# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The reliability suite's one summary line: how many injected faults, races, invalid invocations and forgeries
the extension came through, counted from the checks the tests made.

Each counted item is one check a test made (`tally` fixture in this package's conftest). With pytest-xdist every
worker hands its counts to the controller (`workeroutput`), which adds them up and prints the line at the end of
the run. The controller loads this module only when asked (`-p tests.reliability.summary`, as `.ci/run` does):
it collects no tests, so it never sees this package's conftest.
"""
import json

import pytest

# category -> (words after the counts)
CATEGORIES = {
    'faults': 'survived with no half state',
    'concurrency': 'nothing lost or doubled',
    'invalid invocations': 'one line, exit 2/3, no traceback, no write',
    'forgeries': 'refused or harmless',
}
COUNTS = {}   # category -> {'ok': n, 'total': n, 'known': n}; this process's, plus its workers' on the controller


def add(category, passed, known=False):
    """Count one check: `known` marks a failed check of a test marked xfail for a known finding."""
    entry = COUNTS.setdefault(category, {'ok': 0, 'total': 0, 'known': 0})
    entry['total'] += 1
    entry['ok'] += int(bool(passed))
    entry['known'] += int(not passed and known)


def merge(counts):
    for category, entry in counts.items():
        mine = COUNTS.setdefault(category, {'ok': 0, 'total': 0, 'known': 0})
        for key in mine:
            mine[key] += entry.get(key, 0)


def line(counts=None):
    """`reliability: faults 18/18 survived with no half state; ...` (categories that ran, in a fixed order)."""
    counts = COUNTS if counts is None else counts
    parts = []
    for category, words in CATEGORIES.items():
        entry = counts.get(category)
        if not entry:
            continue
        text = f"{category} {entry['ok']}/{entry['total']} {words}"
        if entry['known']:
            text += f" ({entry['known']} failing for known findings, marked xfail)"
        parts.append(text)
    return 'reliability: ' + '; '.join(parts) if parts else ''


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, 'workeroutput', None)
    if workeroutput is not None:
        workeroutput['reliability'] = json.dumps(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # pylint: disable=unused-argument
    output = getattr(node, 'workeroutput', None) or {}
    if output.get('reliability'):
        merge(json.loads(output['reliability']))


def pytest_terminal_summary(terminalreporter):
    text = line()
    if text:
        terminalreporter.write_line(text)
