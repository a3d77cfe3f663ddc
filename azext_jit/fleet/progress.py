# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Progress on long fleet runs: az's own progress indicator, on standard error and only on a terminal.

Output (`-o json` and the rest) is never touched: a script that pipes the result sees nothing extra, and a run
without a terminal on standard error (a pipeline, cron, CI) shows no indicator at all.
"""
import sys
import threading


class Progress:
    """`progress(message, done=None, total=None)` from any thread; `end()` clears the line. A no-op without a
    terminal (or without az, as in the unattended runner)."""

    def __init__(self, cli_ctx=None, stream=None):
        stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._hook = None
        if cli_ctx is not None and _is_terminal(stream):
            self._hook = cli_ctx.get_progress_controller(det=True)

    def __call__(self, message, done=None, total=None):
        if self._hook is None:
            return
        with self._lock:
            if total:
                self._hook.add(message=message, value=min(done or 0, total), total_val=total)
            else:
                self._hook.add(message=message)

    def end(self):
        if self._hook is not None:
            with self._lock:
                self._hook.end()
                self._hook = None


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
