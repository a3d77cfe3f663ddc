# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The reliability suite's counting: every check a test makes is counted for the summary line (summary.py)."""
import pytest

from tests.reliability import summary


def pytest_configure(config):
    # Under xdist the workers load this conftest; `-p tests.reliability.summary` may have registered it already.
    if not config.pluginmanager.is_registered(summary):
        config.pluginmanager.register(summary, 'reliability-summary')


class Tally:
    """The counted checks of one test, in one category. `check` records one item and returns whether it held;
    `verify()` fails the test when any did not (so every item of the test is counted first)."""

    def __init__(self, category, known):
        assert category in summary.CATEGORIES, category
        self.category = category
        self.known = known
        self.failed = []
        self.items = 0
        self.verified = False

    def check(self, label, passed, detail=''):
        self.items += 1
        summary.add(self.category, passed, self.known)
        if not passed:
            self.failed.append(f'{label}: {detail}' if detail else label)
        return bool(passed)

    def verify(self):
        self.verified = True
        assert not self.failed, '{} of {} checks failed:\n'.format(len(self.failed), self.items) + \
            '\n'.join(self.failed)


@pytest.fixture
def tally(request):
    """`tally(category)` -> a Tally; the test must end with `.verify()`."""
    made = []
    known = request.node.get_closest_marker('xfail') is not None

    def make(category):
        made.append(Tally(category, known))
        return made[-1]
    yield make
    unverified = [t for t in made if not t.verified and t.failed]
    assert not unverified, [t.failed for t in unverified]
