# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""Request and response bodies checked against Azure's published swagger (OpenAPI 2.0) specs.

The stand-in must refuse what Azure refuses, or the extension's tests would pass against a kinder Azure than
the real one. This module reads the same swagger files that Azure's SDKs are generated from and checks a JSON
body against the schema of one operation, returning every violation with the path to the offending value:

    >>> load("security-jit").validate_request("JitNetworkAccessPolicies_CreateOrUpdate", body)
    ['properties.virtualMachines[0].ports[0].number: 70000 is greater than the maximum of 65535']

How the schema is read (the way AutoRest and the ARM resource providers read it):
- `$ref` is followed within a file (`#/definitions/X`) and across files (`./network.json#/definitions/Y`).
  Keys written beside a `$ref` (`readOnly`, `description`) still count: Swagger 2.0 says to ignore them,
  but AutoRest and the Azure specs rely on them.
- `allOf` merges its parts into one object: their properties and required lists are united.
- `x-ms-client-flatten` only changes the SDK's Python classes; the JSON on the wire keeps the nesting.
- `enum` is enforced, except when `x-ms-enum.modelAsString` is true: the swagger then promises only a string
  (the list is "known values today; more may come"), the SDKs send and accept any string, and a resource
  provider that refuses a value does so as its own semantic rule (NSG access "Maybe" is refused by the
  network RP, and by the stand-in's network module, not here). The Initiate example itself answers with
  status "Initiating", which its enum lacks.
- `type`, `format` (int32, int64, date-time as RFC 3339), `minimum`/`maximum` (and their exclusive forms),
  `minLength`/`maxLength`, `pattern`, `items`, `additionalProperties` and `required` are checked. Other
  formats (arm-id, uuid, duration...) and keywords are annotations here: the reachable schemas use none that
  constrains a value.
- Polymorphism (`discriminator`): a value of a base schema that names a discriminator property (e.g.
  RoleManagementPolicyRule's `ruleType`) is checked against the subtype that property names: the definition
  of the same file whose `x-ms-discriminator-value` is that value, or, without one, whose name is that value
  (Swagger 2.0's default), and that derives from the base through `allOf`. A value naming no known subtype,
  or missing the property, is a violation. A base schema the value cannot be matched against (not reached
  through a `$ref`) raises SpecError rather than being half-checked.

Decisions (where the swagger alone does not say what Azure does):
- Unknown properties are violations wherever an object declares its properties and says nothing about
  `additionalProperties`: ARM ignores them, but a client that sends them has a bug (a typo, a wrong nesting
  level) that the ignoring would hide. An object schema that declares no properties at all (CloudError's
  `info`) is free-form.
- readOnly properties in a *request* are tolerated and not examined at all: ARM drops them, and SDKs echo
  back what a GET returned. A readOnly property listed as required is not required in a request either.
  In a *response* readOnly properties are checked like any other: they are what the server must get right.
- `null` for a property counts as the property being absent (how ARM reads it in a PUT): fine when optional,
  a violation when required. `null` elsewhere (array item, body) is a type violation unless `x-nullable`.
- A spec file that the copy lacks (networkSecurityGroup.json refers to networkInterface.json and
  others) raises SpecError when a body actually reaches it, rather than passing unseen data as valid.
"""
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

SPECS_ENV = "JIT_STANDIN_SPECS"
# Azure's published material the stand-in is held to, copied verbatim (provenance in reference/SOURCES.md).
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
SPEC_FILES = {
    "security-jit": "security/2020-01-01/jitNetworkAccessPolicies.json",
    "network-nsg": "network/2024-05-01/networkSecurityGroup.json",
    "authorization-roledefinitions": "authorization/2022-04-01/authorization-RoleDefinitionsCalls.json",
    "authorization-pim-assignment": "authorization/2020-10-01/RoleAssignmentScheduleRequest.json",
    "authorization-pim-eligibility": "authorization/2020-10-01/RoleEligibilityScheduleRequest.json",
    "authorization-pim-policies": "authorization/2020-10-01/RoleManagementPolicy.json",
    "authorization-approvals": "authorization/2021-01-01-preview/authorization-RoleAssignmentApprovalCalls.json",
    "resourcegraph": "resourcegraph/2021-03-01/resourcegraph.json",
}
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
INTEGER_FORMATS = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}
RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$")


class SpecError(Exception):
    """The spec cannot answer: unknown operation, a file or definition missing, or an unsupported construct."""


def specs_root():
    """Where the azure-rest-api-specs files are: $JIT_STANDIN_SPECS, else the copy in reference/ beside this module."""
    if os.environ.get(SPECS_ENV):
        return Path(os.environ[SPECS_ENV])
    return REFERENCE_DIR / "azure-rest-api-specs"


_documents = {}  # absolute path -> parsed swagger file; types.json and network.json are shared by many specs
_specs = {}      # (name, root) -> SwaggerSpec


def load(name):
    """The spec called `name` ("security-jit" or "network-nsg"), loaded once per specs root."""
    if name not in SPEC_FILES:
        raise SpecError("unknown spec {!r}; known: {}".format(name, ", ".join(sorted(SPEC_FILES))))
    key = (name, specs_root())
    if key not in _specs:
        _specs[key] = SwaggerSpec(key[1] / SPEC_FILES[name])
    return _specs[key]


@dataclass(frozen=True)
class Operation:
    """One operation of a spec, with its parameters' `$ref`s followed."""
    operation_id: str
    method: str          # "PUT"
    path: str            # the URL template, "/subscriptions/{subscriptionId}/..."
    parameters: tuple    # parameter objects (name, in, required, schema or type)
    responses: dict      # status code as a string, or "default" -> response object

    @property
    def body_parameter(self):
        return next((p for p in self.parameters if p.get("in") == "body"), None)


class SwaggerSpec:
    """One swagger file: its operations, and bodies checked against their schemas."""

    def __init__(self, path):
        self.path = Path(path).resolve()
        self.document = _document(self.path)
        self._operations = {}
        for url, item in self.document.get("paths", {}).items():
            for method, definition in item.items():
                if method in HTTP_METHODS and "operationId" in definition:
                    self._operations[definition["operationId"]] = (method, url, item, definition)

    def __repr__(self):
        return "SwaggerSpec({!r})".format(str(self.path))

    @property
    def operation_ids(self):
        return sorted(self._operations)

    def operation(self, operation_id):
        if operation_id not in self._operations:
            raise SpecError("no operation {!r} in {}; it has: {}".format(
                operation_id, self.path.name, ", ".join(self.operation_ids)))
        method, url, item, definition = self._operations[operation_id]
        # Parameters may be declared on the path (shared by its operations) and overridden by the operation.
        parameters = {}
        for parameter in [*item.get("parameters", []), *definition.get("parameters", [])]:
            parameter = _deref(parameter)
            parameters[(parameter["name"], parameter["in"])] = parameter
        return Operation(operation_id, method.upper(), url, tuple(parameters.values()), definition["responses"])

    def validate_request(self, operation_id, body):
        """Violations of the operation's `in: body` parameter by `body` (parsed JSON; None = no body)."""
        parameter = self.operation(operation_id).body_parameter
        if parameter is None:
            return [] if body is None else ["(body): {} takes no request body".format(operation_id)]
        if body is None:
            return ["(body): the {!r} body is required".format(parameter["name"])] if parameter.get("required") else []
        problems = []
        _check(parameter["schema"], body, "", True, problems)
        return problems

    def validate_response(self, operation_id, status_code, body):
        """Violations of the response schema declared for `status_code` by `body` (parsed JSON; None = no body).

        A success status the operation does not declare is itself a violation; error statuses fall back to the
        `default` response (ARM's CloudError), which is how every Azure spec declares its errors.
        """
        responses = self.operation(operation_id).responses
        response = responses.get(str(status_code))
        if response is None:
            if int(status_code) < 400 or "default" not in responses:
                return ["(response): status {} is not declared for {} (declared: {})".format(
                    status_code, operation_id, ", ".join(responses))]
            response = responses["default"]
        schema = _deref(response).get("schema")
        if schema is None:
            return [] if body is None else ["(body): status {} of {} declares no body, got {}".format(
                status_code, operation_id, _describe(body))]
        if body is None:
            return ["(body): status {} of {} declares a body, got none".format(status_code, operation_id)]
        problems = []
        _check(schema, body, "", False, problems)
        return problems


# --- reading swagger files ---------------------------------------------------------------------------------

def _document(path):
    """A swagger file, parsed once, with each `$ref` rewritten as an absolute `file#pointer`.

    Rewriting on load means a schema fragment carries its own context: `#/definitions/X` found while walking
    types.json still means types.json's X after the validator has moved on to another file.
    """
    path = Path(path).resolve()
    if path not in _documents:
        if not path.is_file():
            raise SpecError("{} is not in the local copy of the specs".format(path))
        with path.open(encoding="utf-8") as handle:
            _documents[path] = _absolute_refs(json.load(handle), path)
    return _documents[path]


def _absolute_refs(node, path):
    if isinstance(node, list):
        return [_absolute_refs(item, path) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _absolute_refs(value, path) for key, value in node.items()}
    if isinstance(node.get("$ref"), str):
        target, _, pointer = node["$ref"].partition("#")
        node["$ref"] = "{}#{}".format(_locate(path, target) if target else path, pointer)
    return node


def _locate(referrer, relative):
    """The file a relative `$ref` names, tolerating the copy's flattened layout.

    The copy keeps `security/2020-01-01/` where azure-rest-api-specs has
    `specification/security/resource-manager/Microsoft.Security/stable/2020-01-01/`, so the security spec's
    `../../../common/v1/types.json` climbs past it. When the literal target is missing, retry with fewer
    leading `../`: each retry lands closer to the referring file, never above the literal target.
    """
    literal = (referrer.parent / relative).resolve()
    candidate = relative
    while not literal.is_file() and candidate.startswith("../"):
        candidate = candidate[3:]
        if (referrer.parent / candidate).is_file():
            return (referrer.parent / candidate).resolve()
    return literal


def _resolve(ref):
    target, _, pointer = ref.partition("#")
    node = _document(target)
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SpecError("{} names nothing in {}".format(pointer, Path(target).name))
        node = node[part]
    return node


def _deref(schema):
    """`schema` with its `$ref` followed; keys beside the `$ref` (readOnly, description) win over the target's."""
    while "$ref" in schema:
        beside = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**_resolve(schema["$ref"]), **beside}
    return schema


def _merged(schema):
    """`schema` dereferenced, with `allOf` folded in: properties and required lists united, own keys last."""
    schema = _deref(schema)
    if "allOf" not in schema:
        return schema
    merged = {"properties": {}, "required": []}
    own = {key: value for key, value in schema.items() if key != "allOf"}
    for part in [*map(_merged, schema["allOf"]), own]:
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += [name for name in part.get("required", []) if name not in merged["required"]]
        merged.update({key: value for key, value in part.items() if key not in ("properties", "required")})
    return merged


def _type_of(schema):
    """The JSON type a schema asks for; AutoRest reads a schema with properties but no `type` as an object."""
    if "type" in schema:
        return schema["type"]
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    return "array" if "items" in schema else None


def _is_read_only(schema, where):
    if "readOnly" in schema:  # beside a `$ref`, so the target (perhaps in a file the copy lacks) is not needed
        return bool(schema["readOnly"])
    try:
        return bool(_deref(schema).get("readOnly"))
    except SpecError as error:
        raise SpecError("{}: cannot be checked: {}".format(where, error)) from None


# --- checking a value ------------------------------------------------------------------------------------

def _check(schema, value, path, request, problems):
    """Append to `problems` each way `value` (found at `path`) breaks `schema`; `request` picks readOnly rules."""
    where = path or "(body)"
    try:
        schema, problem = _subtype(schema, value)
        if problem:
            problems.append("{}: {}".format(where, problem))
            return
        polymorphic = schema.get("$ref") if isinstance(schema, dict) else None
        schema = _merged(schema)
    except SpecError as error:
        raise SpecError("{}: cannot be checked: {}".format(where, error)) from None
    if ("discriminator" in schema or "x-ms-discriminator-value" in schema) and not polymorphic:
        raise SpecError("{}: polymorphic schemas (discriminator) are not supported here".format(where))
    kind = _type_of(schema)
    if value is None:
        if not schema.get("x-nullable"):
            problems.append("{}: expected {}, got null".format(where, kind or "a value"))
        return
    expected = JSON_TYPES.get(kind)
    if expected and (not isinstance(value, expected) or (isinstance(value, bool) and kind != "boolean")):
        problems.append("{}: expected {}, got {}".format(where, kind, _describe(value)))
        return
    if isinstance(value, dict) and kind in ("object", None):
        _check_object(schema, value, path, request, problems)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(schema["items"], item, "{}[{}]".format(path, index), request, problems)
    else:
        problems.extend("{}: {}".format(where, problem) for problem in _scalar_problems(schema, value))


def _subtype(schema, value):
    """(schema to check `value` against, problem or None): for a `$ref` to a base with a `discriminator`, the
    `$ref` of the subtype the value names (see the module docstring); otherwise `schema` itself."""
    if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and isinstance(value, dict)):
        return schema, None
    base = _deref(schema)
    prop = base.get("discriminator")
    if not prop:
        return schema, None
    target, _, pointer = _deref_chain_end(schema).partition("#")
    tag = value.get(prop)
    if not isinstance(tag, str):
        return schema, "the discriminator {!r} is missing".format(prop)
    base_ref = "{}#{}".format(target, pointer)
    for name, definition in _document(target).get("definitions", {}).items():
        parents = [part.get("$ref") for part in definition.get("allOf", []) if isinstance(part, dict)]
        if base_ref in parents and definition.get("x-ms-discriminator-value", name) == tag:
            return {"$ref": "{}#/definitions/{}".format(target, name)}, None
    return schema, "{} {} names no subtype of {}".format(prop, json.dumps(tag), pointer.split("/")[-1])


def _deref_chain_end(schema):
    """The last `$ref` of a chain of `$ref`s (the definition that holds the schema itself)."""
    ref = schema["$ref"]
    node = _resolve(ref)
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        node = _resolve(ref)
    return ref


def _check_object(schema, value, path, request, problems):
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for name in schema.get("required", []):
        where = _join(path, name)
        if value.get(name) is None and not (request and name in properties and _is_read_only(properties[name], where)):
            problems.append("{}: required property {}".format(where, "is null" if name in value else "is missing"))
    for name, item in value.items():
        where = _join(path, name)
        if name in properties:
            if request and _is_read_only(properties[name], where):
                continue  # ARM drops readOnly values from requests without looking at them
            if item is not None:  # null = absent; a required one was reported above
                _check(properties[name], item, where, request, problems)
        elif isinstance(extra, dict):
            _check(extra, item, where, request, problems)
        elif extra is False or (extra is None and properties):
            problems.append("{}: unexpected property".format(where))


def _scalar_problems(schema, value):
    """The constraints a string or number can break (the type is already right)."""
    if "enum" in schema and value not in schema["enum"] and not schema.get("x-ms-enum", {}).get("modelAsString"):
        # modelAsString: true means an open set (see the module docstring), so only closed enums get here.
        yield "{} is not one of {}".format(json.dumps(value), ", ".join(json.dumps(v) for v in schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and (value <= schema["minimum"] if schema.get("exclusiveMinimum")
                                    else value < schema["minimum"]):
            yield "{} is less than the {}minimum of {}".format(
                value, "exclusive " if schema.get("exclusiveMinimum") else "", schema["minimum"])
        if "maximum" in schema and (value >= schema["maximum"] if schema.get("exclusiveMaximum")
                                    else value > schema["maximum"]):
            yield "{} is greater than the {}maximum of {}".format(
                value, "exclusive " if schema.get("exclusiveMaximum") else "", schema["maximum"])
        low, high = INTEGER_FORMATS.get(schema.get("format"), (value, value))
        if not low <= value <= high:
            yield "{} does not fit in {}".format(value, schema["format"])
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            yield "{} is shorter than the minimum length of {}".format(json.dumps(value), schema["minLength"])
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield "{} is longer than the maximum length of {}".format(json.dumps(value), schema["maxLength"])
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield "{} does not match the pattern {}".format(json.dumps(value), schema["pattern"])
        if schema.get("format") == "date-time" and not _is_date_time(value):
            yield "{} is not an RFC 3339 date-time (like 2020-01-01T10:00:00Z)".format(json.dumps(value))


def _is_date_time(text):
    """RFC 3339, which swagger's date-time means: the offset is mandatory (a bare local time is ambiguous)."""
    match = RFC3339.match(text)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:  # the regex checks the shape, the calendar the values (no 30 February)
        dt.datetime(year, month, day, hour, minute)
    except ValueError:
        return False
    return second <= 60  # RFC 3339 allows a leap second


def _join(path, name):
    return "{}.{}".format(path, name) if path else name


def _describe(value):
    if isinstance(value, bool):
        return "boolean " + json.dumps(value)
    if isinstance(value, str):
        return "string " + json.dumps(value)
    if isinstance(value, (int, float)):
        return "number {}".format(value)
    return {dict: "an object", list: "an array"}.get(type(value), type(value).__name__)
