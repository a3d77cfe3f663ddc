# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------
"""Check or add the licence header that every Python file of the repository starts with.

    python .ci/licence_headers.py --check   lists the git-tracked .py files without the header; exit 1 if any
    python .ci/licence_headers.py --fix     puts the header at the top of those files

The header is the four-line block used across Azure/azure-cli-extensions. Only a shebang line and a PEP 263
encoding line may come before it. `--fix` inserts the header (and one blank line, unless a blank line already
follows) after such lines and changes no other byte. Empty files, such as bare package `__init__.py` files,
need no header. A file that already carries a Microsoft copyright notice somewhere other than at the top is
reported and left alone, so the header is never added twice.
"""
import argparse
import os
import re
import subprocess
import sys

HEADER_LINES = (
    b'# ' + b'-' * 92,
    b'# Copyright (c) Microsoft Corporation. All rights reserved.',
    b'# Licensed under the MIT License. See License.txt in the project root for license information.',
    b'# ' + b'-' * 92,
)
COPYRIGHT = b'Copyright (c) Microsoft Corporation'
# PEP 263: an encoding declaration is only honoured on line 1 or 2.
ENCODING_LINE = re.compile(rb'^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+')

OK, MISSING, MISPLACED = 'ok', 'missing', 'misplaced'


def repository_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tracked_python_files(root):
    out = subprocess.run(['git', 'ls-files', '-z', '--', '*.py'], cwd=root, check=True,
                         stdout=subprocess.PIPE).stdout
    return [name for name in out.decode('utf-8').split('\0') if name]


def _preamble_length(lines):
    """How many leading lines may stand before the header: a shebang, then an encoding line."""
    count = 0
    if lines and lines[0].startswith(b'#!'):
        count = 1
    if len(lines) > count and ENCODING_LINE.match(lines[count]):
        count += 1
    return count


def _content(line):
    return line.rstrip(b'\r\n')


def status(data):
    if not data:
        return OK
    lines = data.splitlines(keepends=True)
    start = _preamble_length(lines)
    top = [_content(line) for line in lines[start:start + len(HEADER_LINES)]]
    if top == list(HEADER_LINES):
        return OK
    return MISPLACED if COPYRIGHT in data else MISSING


def with_header(data):
    """`data` with the header inserted after its shebang / encoding lines; nothing else changes."""
    lines = data.splitlines(keepends=True)
    start = _preamble_length(lines)
    newline = b'\r\n' if lines and lines[0].endswith(b'\r\n') else b'\n'
    preamble = lines[:start]
    if preamble and not preamble[-1].endswith((b'\n', b'\r')):
        preamble[-1] += newline  # a file made of a shebang alone, without a final newline
    rest = lines[start:]
    block = [line + newline for line in HEADER_LINES]
    if rest and _content(rest[0]):
        block.append(newline)
    return b''.join(preamble + block + rest)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--check', action='store_true', help='list the files without the header; exit 1 if any')
    mode.add_argument('--fix', action='store_true', help='insert the header where it is missing')
    args = parser.parse_args(argv)

    root = repository_root()
    missing, misplaced = [], []
    for name in tracked_python_files(root):
        path = os.path.join(root, name)
        if not os.path.isfile(path):  # deleted in the work tree but not yet in the index
            continue
        with open(path, 'rb') as f:
            data = f.read()
        found = status(data)
        if found == MISSING:
            missing.append((name, path, data))
        elif found == MISPLACED:
            misplaced.append(name)

    if args.check:
        for name, _, _ in missing:
            print(f'{name}: no licence header')
    else:
        for name, path, data in missing:
            with open(path, 'wb') as f:
                f.write(with_header(data))
            print(f'{name}: licence header added')
    for name in misplaced:
        print(f'{name}: copyright notice is not the exact header at the top of the file; fix it by hand')

    if misplaced or (args.check and missing):
        count = len(misplaced) + (len(missing) if args.check else 0)
        print(f'{count} file(s) without the licence header', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
