# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Access tokens: unsigned JWTs that say who the caller is.

Real Azure AD signs its tokens; clients never check the signature of an access token (only the resource
does), so an unsigned token (`alg: none`) is enough for `az`, MSAL and azure-identity, and lets the
stand-in know the caller from the `oid` and `appid` claims (app tokens carry no `upn`). Every identity signs in as a
service principal, so its token is an app token whatever its `kind` (world.py `Identity`); a managed identity's
also carries `xms_mirid`, its resource id, as Azure's managed identity tokens do.
"""
import base64
import json
import time

LIFETIME = 3600


def _b64(data):
    return base64.urlsafe_b64encode(json.dumps(data, separators=(',', ':')).encode()).rstrip(b'=').decode()


def issue(world, ident, audience):
    now = int(time.time())
    claims = {'aud': audience, 'iss': 'https://sts.windows.net/{}/'.format(world.tenant_id), 'iat': now,
              'nbf': now, 'exp': now + LIFETIME, 'oid': ident.object_id, 'sub': ident.object_id,
              'tid': world.tenant_id, 'appid': ident.client_id, 'name': ident.name,
              'idtyp': 'app'}
    if ident.kind == 'managedIdentity':
        claims['xms_mirid'] = ident.resource_id   # a managed identity's token names its resource
    return '{}.{}.'.format(_b64({'alg': 'none', 'typ': 'JWT'}), _b64(claims))


def decode(token):
    """The claims of a token, or None when it is not a JWT."""
    try:
        payload = token.split('.')[1]
        payload += '=' * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError):
        return None
