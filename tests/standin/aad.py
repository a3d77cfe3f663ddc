# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Azure AD: OIDC discovery, the v2.0 token endpoint and an App Service-style managed identity endpoint.

`az login --service-principal` makes exactly two calls here (discovery, then a client-credentials token
request); azure-identity's ManagedIdentityCredential, given IDENTITY_ENDPOINT and IDENTITY_HEADER as on
App Service and Azure Functions, calls the managed identity endpoint.
"""
import time
from urllib.parse import parse_qsl

from . import tokens
from .server import ArmError, Response, route

# The managed identity the unattended runner uses: the stand-in's "Function app" identity.
MSI_HEADER = 'standin-identity-header'


def _aad_error(status, error, description):
    return ArmError(status, error, description)


@route('GET', '/{tenant}/v2.0/.well-known/openid-configuration', auth=False)
def openid_configuration(req):
    base = '{}/{}'.format(req.base_url, req.params['tenant'])
    return Response(200, {
        'token_endpoint': base + '/oauth2/v2.0/token',
        'authorization_endpoint': base + '/oauth2/v2.0/authorize',
        'device_authorization_endpoint': base + '/oauth2/v2.0/devicecode',
        'issuer': base + '/v2.0',
        'jwks_uri': base + '/discovery/v2.0/keys',
        'response_types_supported': ['code', 'id_token', 'code id_token', 'id_token token'],
        'subject_types_supported': ['pairwise'],
        'id_token_signing_alg_values_supported': ['RS256'],
        'token_endpoint_auth_methods_supported': ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        'tenant_region_scope': 'WW',
    })


@route('POST', '/{tenant}/oauth2/v2.0/token', auth=False)
def token(req):
    form = dict(parse_qsl(req.raw_body.decode()))
    world = req.world
    if req.params['tenant'] not in (world.tenant_id, 'organizations', 'common'):
        return Response(400, {'error': 'invalid_request', 'error_description':
                              "AADSTS90002: Tenant '{}' not found.".format(req.params['tenant'])})
    if form.get('grant_type') != 'client_credentials':
        return Response(400, {'error': 'unsupported_grant_type', 'error_description':
                              'AADSTS70003: The stand-in supports service principals (client_credentials) only.'})
    ident = world.identity_by_client_id(form.get('client_id', ''))
    if ident is None:
        return Response(400, {'error': 'unauthorized_client', 'error_description':
                              "AADSTS700016: Application with identifier '{}' was not found in the directory."
                              .format(form.get('client_id'))})
    if form.get('client_secret') != ident.secret:
        return Response(401, {'error': 'invalid_client', 'error_description':
                              'AADSTS7000215: Invalid client secret provided.'})
    audience = form.get('scope', '').split(' ')[0].replace('/.default', '')
    return Response(200, {'token_type': 'Bearer', 'expires_in': tokens.LIFETIME, 'ext_expires_in': tokens.LIFETIME,
                          'access_token': tokens.issue(world, ident, audience)})


@route('GET', '/msi/token', auth=False)
def managed_identity_token(req):
    """App Service / Functions managed identity (api-version 2019-08-01): the header proves locality."""
    if req.headers.get('X-IDENTITY-HEADER') != MSI_HEADER:
        return Response(401, {'error': 'unauthorized', 'error_description': 'X-IDENTITY-HEADER is missing or wrong.'})
    ident = req.world.identities.get('function-app')
    if ident is None:
        return Response(400, {'error': 'invalid_request', 'error_description': 'No managed identity is assigned.'})
    resource = req.arg('resource', '')
    return Response(200, {'access_token': tokens.issue(req.world, ident, resource),
                          'expires_on': str(int(time.time()) + tokens.LIFETIME), 'resource': resource,
                          'token_type': 'Bearer', 'client_id': ident.client_id})
