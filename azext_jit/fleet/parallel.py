# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Work on many items at once, within the limits Azure sets on writes.

`run_each(items, work)` runs `work(item)` on a few threads: at most `workers` at once; with `per_key(item)`, never
two items of one key at once (an NSG takes one write at a time: a second writer only gets 429
`RetryableErrorDueToAnotherOperation`); with `per_group=(group_of, n)`, at most `n` items of one group at once (ARM
throttles writes per subscription). Items start in the order given, skipping those whose key or group is busy.

One failure never stops the others: `run_each` returns `(results, failures)`, `results` the `(item, value)` of each
item that worked and `failures` the `(item, one-line message)` of each that raised, both in the order of `items`.
Only Ctrl+C (or another BaseException) stops the run: no new item starts, the running ones finish, and it is raised.

The threads share the caller's objects: `work` must not share mutable state between items without a lock (an
`azure.nsgs` cache entry is only touched by the one thread working on that NSG when `per_key` is the NSG).
"""
import threading

DEFAULT_WORKERS = 8


def one_line(ex):
    """A failure in one line: a JitError's message, an Azure SDK error as `errors.explain_http_error` words it,
    anything else as its type and text."""
    from azext_jit.errors import JitError, explain_http_error
    if isinstance(ex, JitError):
        text = ex.message
    else:
        try:
            from azure.core.exceptions import AzureError
        except ImportError:   # pragma: no cover - azure-core is always there beside the extension
            AzureError = ()   # pylint: disable=invalid-name
        text = explain_http_error(ex).message if isinstance(ex, AzureError) else f'{type(ex).__name__}: {ex}'
    return ' '.join(str(text).split())


class _Board:
    """Which items wait and which keys and groups are busy; every method is called holding `lock`."""

    def __init__(self, items, per_key, per_group):
        self.waiting = list(enumerate(items))
        self.per_key = per_key
        self.group_of, self.group_limit = per_group or (None, None)
        self.busy_keys, self.busy_groups = set(), {}
        self.stopped = False

    def _key(self, item):
        return self.per_key(item) if self.per_key else None

    def _group(self, item):
        return self.group_of(item) if self.group_of else None

    def take(self):
        """The next item free to start (index, item, key, group), or None."""
        for position, (index, item) in enumerate(self.waiting):
            key, group = self._key(item), self._group(item)
            if key is not None and key in self.busy_keys:
                continue
            if group is not None and self.busy_groups.get(group, 0) >= self.group_limit:
                continue
            del self.waiting[position]
            if key is not None:
                self.busy_keys.add(key)
            if group is not None:
                self.busy_groups[group] = self.busy_groups.get(group, 0) + 1
            return index, item, key, group
        return None

    def release(self, key, group):
        self.busy_keys.discard(key)
        if group is not None:
            self.busy_groups[group] -= 1


def run_each(items, work, workers=DEFAULT_WORKERS, per_key=None, progress=None, per_group=None):
    """`work(item)` for every item, in parallel within the limits above; `(results, failures)`.

    `progress(done, total)` is called (from the worker threads, one at a time) after each item."""
    items = list(items)
    if not items:
        return [], []
    board = _Board(items, per_key, per_group)
    lock = threading.Condition()
    outcome = {}        # index -> (True, value) | (False, message)
    interrupted = []

    def worker():
        while True:
            with lock:
                while True:
                    if board.stopped or not board.waiting:
                        return
                    taken = board.take()
                    if taken:
                        break
                    lock.wait()
            index, item, key, group = taken
            try:
                result = (True, work(item))
            except Exception as ex:  # pylint: disable=broad-except  # one failure never stops the others
                result = (False, one_line(ex))
            except BaseException as ex:  # pylint: disable=broad-except  # Ctrl+C: stop starting new items
                result = (False, one_line(ex) or type(ex).__name__)
                with lock:
                    board.stopped = True
                    interrupted.append(ex)
            with lock:
                outcome[index] = result
                board.release(key, group)
                done = len(outcome)
                if progress:
                    progress(done, len(items))
                lock.notify_all()

    threads = [threading.Thread(target=worker, name=f'jit-fleet-{n}', daemon=True)
               for n in range(max(1, min(workers, len(items))))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        with lock:
            board.stopped = True
            lock.notify_all()
        raise
    if interrupted:
        raise interrupted[0]
    results = [(items[i], outcome[i][1]) for i in sorted(outcome) if outcome[i][0]]
    failures = [(items[i], outcome[i][1]) for i in sorted(outcome) if not outcome[i][0]]
    return results, failures
