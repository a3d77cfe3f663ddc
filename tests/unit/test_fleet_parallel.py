# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Parallel work (fleet/parallel.py): never more than the bound at once, never two items of one key (one NSG) at once,
at most n of one group (one subscription), and every failure reported by its item while the others are done."""
import threading
import time

import pytest
from azure.core.exceptions import HttpResponseError

from azext_jit.errors import NotAllowed
from azext_jit.fleet.parallel import run_each


class _Watch:
    """Counts what runs at once, overall and per key/group."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running, self.most = [], 0
        self.clashes = []
        self.most_per_group = {}

    def work(self, item, key=None, group=None, seconds=0.01):
        with self.lock:
            if key is not None and any(k == key for k, _ in self.running):
                self.clashes.append(key)
            self.running.append((key, group))
            self.most = max(self.most, len(self.running))
            if group is not None:
                now = sum(1 for _, g in self.running if g == group)
                self.most_per_group[group] = max(self.most_per_group.get(group, 0), now)
        time.sleep(seconds)
        with self.lock:
            self.running.remove((key, group))
        return item * 10


def test_no_more_than_the_bound_run_at_once_and_every_item_is_done():
    watch = _Watch()
    results, failures = run_each(range(40), watch.work, workers=4)
    assert results == [(i, i * 10) for i in range(40)] and failures == []
    assert 2 <= watch.most <= 4, watch.most


def test_two_items_of_one_key_never_run_at_once():
    watch = _Watch()
    items = [(f'nsg{i % 3}', i) for i in range(30)]   # 3 NSGs, 10 items each
    results, failures = run_each(items, lambda it: watch.work(it[1], key=it[0]), workers=8, per_key=lambda it: it[0])
    assert watch.clashes == [] and failures == []
    assert [r for _, r in results] == [i * 10 for i in range(30)]
    assert watch.most >= 2, 'items of different keys still run side by side'


def test_no_more_than_n_items_of_one_group_run_at_once():
    watch = _Watch()
    items = [(f'sub{i % 2}', i) for i in range(40)]
    results, _ = run_each(items, lambda it: watch.work(it[1], group=it[0]), workers=16,
                          per_group=(lambda it: it[0], 3))
    assert len(results) == 40
    assert max(watch.most_per_group.values()) <= 3 and watch.most > 3, (watch.most_per_group, watch.most)


def test_every_failure_is_reported_by_item_in_one_line_and_the_others_are_done():
    def work(item):
        if item == 3:
            raise NotAllowed("You are not allowed to perform 'delete'\non 'nsg3'.")
        if item == 5:
            raise HttpResponseError(message='Operation returned an invalid status', response=None)
        if item == 7:
            raise KeyError('properties')
        return item

    results, failures = run_each(range(10), work, workers=3)
    assert [i for i, _ in results] == [0, 1, 2, 4, 6, 8, 9]
    assert [item for item, _ in failures] == [3, 5, 7]
    assert failures[0][1] == "You are not allowed to perform 'delete' on 'nsg3'."
    assert all('\n' not in message and message for _, message in failures)
    assert failures[2][1] == "KeyError: 'properties'"


def test_progress_counts_every_item_once():
    calls = []
    run_each(range(12), lambda i: i, workers=4, progress=lambda done, total: calls.append((done, total)))
    assert sorted(calls) == [(n, 12) for n in range(1, 13)]


def test_nothing_to_do_starts_no_thread():
    before = threading.active_count()
    assert run_each([], lambda i: 1 / 0) == ([], [])
    assert threading.active_count() == before


def test_ctrl_c_in_one_item_stops_new_items_and_is_raised():
    started = []

    def work(item):
        started.append(item)
        if item == 1:
            raise KeyboardInterrupt
        time.sleep(0.01)

    with pytest.raises(KeyboardInterrupt):
        run_each(range(50), work, workers=2)
    assert len(started) < 50
