# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""SDK objects to ARM's wire JSON.

The extension reasons about resources in the shape ARM sends them (camelCase, `properties` nested), the
shape the REST docs and `az rest` show. Older SDKs (compute, security, resource) use msrest models; the
network SDK uses dict-like models. `wire()` accepts either, or a plain dict.
"""


def wire(obj):
    if obj is None or isinstance(obj, dict) and not hasattr(obj, 'as_dict'):
        return obj
    if hasattr(obj, 'serialize'):          # msrest-style model
        return obj.serialize(keep_readonly=True)
    if hasattr(obj, 'as_dict'):            # azure-core model_base (dict-like)
        return obj.as_dict()
    return dict(obj)
