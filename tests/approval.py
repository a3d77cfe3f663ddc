# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""PIM as tests and benchmarks see it: approval set up by the administrator (`enable --require-approval`), and
PIM's API read over HTTPS as one of the stand-in's identities (what waits for an approver, a request's state)."""
import requests

from tests.standin import tokens

AUTH = '/providers/Microsoft.Authorization'
PIM_API = '2020-10-01'


class Pim:
    """PIM's API over HTTPS, as one of the stand-in's identities."""

    def __init__(self, standin):
        self.standin = standin
        self.world = standin.world
        self.session = requests.Session()
        self.session.trust_env = False

    def call(self, method, path, api, body=None, who='admin', **params):
        ident = self.world.identities[who]
        token = tokens.issue(self.world, ident, self.standin.base_url + '/')
        answer = self.session.request(method, self.standin.base_url + path, params=dict(params, **{'api-version': api}),
                                      json=body, headers={'Authorization': 'Bearer ' + token},
                                      verify=self.standin.ca_path)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.text.strip() else None

    def oid(self, who):
        return self.world.identities[who].object_id

    def require_approval(self, az, rg, name, requesters=('pim-requester',), approvers=('approver',),
                         groups=('jit-approvers',)):
        """`enable --require-approval` of one VM as the administrator: approvers `approver` and the group
        `jit-approvers`, requester `pim-requester` (or the identities and groups named)."""
        result = az.run('vm', 'jit', 'enable', '-g', rg, '-n', name, '--yes', '--require-approval', '--approvers',
                        *[self.oid(who) for who in approvers], '--approver-groups',
                        *[self.world.groups_by_name[group] for group in groups],
                        '--requesters', *[self.oid(who) for who in requesters])
        assert result.code == 0, result
        return result.json

    def waiting_for(self, who, scope):
        """The pending requests at `scope` that `who` may decide."""
        sub = '/subscriptions/' + self.standin.sub
        return [r for r in self.call('GET', sub + AUTH + '/roleAssignmentScheduleRequests', PIM_API, who=who,
                                     **{'$filter': 'asApprover()'})['value']
                if r['properties']['status'] == 'PendingApproval'
                and r['properties']['scope'].lower() == scope.lower()]

    def request(self, scope, name):
        return self.call('GET', f'{scope}{AUTH}/roleAssignmentScheduleRequests/{name}', PIM_API)
