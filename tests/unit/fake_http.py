# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Just enough of an azure-core HTTP response for HttpResponseError and the extension's error readers (unit tests
that script Azure's answers without a server)."""
import json


class FakeResponse:
    def __init__(self, status, body, headers=None):
        self.status_code = status
        self.reason = 'reason'
        self.headers = headers or {}
        self._body = body
        self.request = None

    def json(self):
        return self._body

    def text(self, encoding=None):  # pylint: disable=unused-argument
        return json.dumps(self._body)

    def body(self):
        return json.dumps(self._body).encode()
