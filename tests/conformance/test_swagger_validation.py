# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""tests/standin/schema.py: Azure's own examples pass, and what Azure's swagger forbids is reported by path.

The stand-in refuses a request when this validator finds a violation, so both directions matter: a false
positive breaks the extension's tests for nothing, a false negative lets a buggy request through.
"""
import json
from pathlib import Path

import pytest

from tests.standin import schema
from tests.standin.schema import SpecError, SwaggerSpec, load

JIT_PUT = "JitNetworkAccessPolicies_CreateOrUpdate"
JIT_INITIATE = "JitNetworkAccessPolicies_Initiate"
RULE_PUT = "SecurityRules_CreateOrUpdate"
NSG_PUT = "NetworkSecurityGroups_CreateOrUpdate"


def _example_index():
    """Example file name -> (spec name, operation id), from each operation's `x-ms-examples`."""
    index = {}
    for name in schema.SPEC_FILES:
        for item in load(name).document["paths"].values():
            for operation in item.values():
                for example in operation.get("x-ms-examples", {}).values():
                    index[Path(example["$ref"].partition("#")[0]).name] = (name, operation["operationId"])
    return index


EXAMPLE_INDEX = _example_index()
EXAMPLE_FILES = sorted(p for p in schema.specs_root().rglob("*.json") if "examples" in p.parts)


def _example(name):
    path = next(p for p in EXAMPLE_FILES if p.name == name)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(name="jit_body")
def fixture_jit_body():
    """A valid JIT policy PUT body: the published example, trimmed to what a client would send."""
    body = _example("CreateJitNetworkAccessPolicy_example.json")["parameters"]["body"]
    del body["properties"]["requests"]
    return body


@pytest.fixture(name="rule_body")
def fixture_rule_body():
    return _example("NetworkSecurityGroupRuleCreate.json")["parameters"]["securityRuleParameters"]


@pytest.fixture(name="initiate_body")
def fixture_initiate_body():
    return _example("InitiateJitNetworkAccessPolicy_example.json")["parameters"]["body"]


# --- the published examples ----------------------------------------------------------------------------------

def test_every_example_file_belongs_to_an_operation_of_our_specs():
    assert {spec for spec, _ in EXAMPLE_INDEX.values()} == set(schema.SPEC_FILES)
    unmapped = [str(p) for p in EXAMPLE_FILES if p.name not in EXAMPLE_INDEX]
    assert not unmapped
    # The mirror keeps NetworkSecurityGroupRuleDelete.json under 2024-07-01 although the 2024-05-01 spec names it;
    # matching by file name puts it under SecurityRules_Delete, whose shape (no bodies) is the same in both.
    assert EXAMPLE_INDEX["NetworkSecurityGroupRuleDelete.json"] == ("network-nsg", "SecurityRules_Delete")


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_request_body_has_no_violation(path):
    spec_name, operation_id = EXAMPLE_INDEX[path.name]
    spec = load(spec_name)
    parameters = json.loads(path.read_text(encoding="utf-8"))["parameters"]
    body_parameter = spec.operation(operation_id).body_parameter
    if body_parameter is None:
        assert spec.validate_request(operation_id, None) == []
        return
    assert body_parameter["name"] in parameters, "the example omits the body it must send"
    assert spec.validate_request(operation_id, parameters[body_parameter["name"]]) == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_response_bodies_have_no_violation(path):
    spec_name, operation_id = EXAMPLE_INDEX[path.name]
    responses = json.loads(path.read_text(encoding="utf-8"))["responses"]
    assert responses
    for status, response in responses.items():
        assert load(spec_name).validate_response(operation_id, int(status), response.get("body")) == [], status


def test_body_parameter_names_are_the_swaggers():
    assert load("security-jit").operation(JIT_PUT).body_parameter["name"] == "body"
    assert load("security-jit").operation(JIT_INITIATE).body_parameter["name"] == "body"
    assert load("network-nsg").operation(RULE_PUT).body_parameter["name"] == "securityRuleParameters"
    assert load("network-nsg").operation(NSG_PUT).body_parameter["name"] == "parameters"
    assert load("network-nsg").operation("SecurityRules_Delete").body_parameter is None


def test_operation_exposes_method_and_url():
    operation = load("security-jit").operation(JIT_INITIATE)
    assert operation.method == "POST"
    assert operation.path.endswith("/{jitNetworkAccessPolicyName}/{jitNetworkAccessPolicyInitiateType}")
    # Parameters written as cross-file $refs into common/v1/types.json are followed.
    assert {p["name"] for p in operation.parameters} >= {"subscriptionId", "api-version", "ascLocation", "body"}


# --- JIT policy PUT -----------------------------------------------------------------------------------------

def test_port_number_as_a_string_is_a_violation(jit_body):
    jit_body["properties"]["virtualMachines"][0]["ports"][0]["number"] = "22"
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        'properties.virtualMachines[0].ports[0].number: expected integer, got string "22"']


def test_port_number_outside_0_to_65535_is_a_violation(jit_body):
    ports = jit_body["properties"]["virtualMachines"][0]["ports"]
    ports[0]["number"], ports[1]["number"] = 70000, -1
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].ports[0].number: 70000 is greater than the maximum of 65535",
        "properties.virtualMachines[0].ports[1].number: -1 is less than the minimum of 0"]
    ports[0]["number"], ports[1]["number"] = 65535, 0
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == []


def test_boolean_and_fractional_port_numbers_are_not_integers(jit_body):
    ports = jit_body["properties"]["virtualMachines"][0]["ports"]
    ports[0]["number"], ports[1]["number"] = True, 22.5
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].ports[0].number: expected integer, got boolean true",
        "properties.virtualMachines[0].ports[1].number: expected integer, got number 22.5"]


def test_unknown_property_at_properties_level_is_a_violation(jit_body):
    jit_body["properties"]["allowedPorts"] = [22]
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == ["properties.allowedPorts: unexpected property"]


def test_misspelt_port_property_is_unexpected_and_leaves_the_real_one_missing(jit_body):
    port = jit_body["properties"]["virtualMachines"][0]["ports"][1]
    port["protocoll"] = port.pop("protocol")
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].ports[1].protocol: required property is missing",
        "properties.virtualMachines[0].ports[1].protocoll: unexpected property"]


def test_missing_virtual_machines_is_a_violation(jit_body):
    # JitNetworkAccessPolicyProperties requires virtualMachines (and nothing else); the policy requires properties.
    del jit_body["properties"]["virtualMachines"]
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines: required property is missing"]
    assert load("security-jit").validate_request(JIT_PUT, {"kind": "Basic"}) == [
        "properties: required property is missing"]


def test_missing_max_request_access_duration_is_a_violation(jit_body):
    del jit_body["properties"]["virtualMachines"][0]["ports"][0]["maxRequestAccessDuration"]
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].ports[0].maxRequestAccessDuration: required property is missing"]


def test_both_source_prefix_forms_on_one_port_are_not_a_swagger_violation(jit_body):
    """Swagger 2.0 cannot say "mutually exclusive"; the spec says it only in the descriptions. Defender refuses
    the combination, and that refusal belongs to the stand-in's semantic checks, not to this validator."""
    port = jit_body["properties"]["virtualMachines"][0]["ports"][0]
    port["allowedSourceAddressPrefix"], port["allowedSourceAddressPrefixes"] = "10.0.0.1", ["10.0.0.2"]
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == []
    declared = load("security-jit").document["definitions"]["JitNetworkAccessPortRule"]["properties"]
    assert "Mutually exclusive" in declared["allowedSourceAddressPrefix"]["description"]


def test_open_enum_protocol_is_not_enforced_but_its_type_is(jit_body):
    port = jit_body["properties"]["virtualMachines"][0]["ports"][0]
    port["protocol"] = "SCTP"  # JitNetworkAccessPortRuleProtocol is modelAsString: an open set
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == []
    port["protocol"] = 6
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].ports[0].protocol: expected string, got number 6"]


def test_read_only_properties_in_a_request_are_tolerated_unexamined(jit_body):
    # id/name/type (Resource), location (Location) and provisioningState are readOnly: ARM drops them.
    jit_body.update(id="/x", name="default", type="Microsoft.Security/locations/jitNetworkAccessPolicies", location=5)
    jit_body["properties"]["provisioningState"] = {"not": "even a string"}
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == []


def test_read_only_properties_in_a_response_are_checked(jit_body):
    jit_body.update(location=5)
    jit_body["properties"]["provisioningState"] = "Succeeded"
    assert load("security-jit").validate_response(JIT_PUT, 200, jit_body) == ["location: expected string, got number 5"]


def test_optional_null_is_absent_but_required_null_is_a_violation(jit_body):
    jit_body["kind"] = None
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == []
    jit_body["properties"]["virtualMachines"][0]["id"] = None
    assert load("security-jit").validate_request(JIT_PUT, jit_body) == [
        "properties.virtualMachines[0].id: required property is null"]


def test_body_of_the_wrong_json_type_is_named_at_the_root():
    assert load("security-jit").validate_request(JIT_PUT, [1]) == ["(body): expected object, got an array"]


def test_missing_or_unexpected_request_body_is_a_violation():
    assert load("security-jit").validate_request(JIT_PUT, None) == ["(body): the 'body' body is required"]
    assert load("security-jit").validate_request("JitNetworkAccessPolicies_Get", {}) == [
        "(body): JitNetworkAccessPolicies_Get takes no request body"]


# --- JIT initiate ------------------------------------------------------------------------------------------

def test_initiate_port_has_no_protocol_or_duration(initiate_body):
    """The initiate port names a number, an end time and perhaps a source: nothing else is on the wire."""
    port = initiate_body["virtualMachines"][0]["ports"][0]
    port.update(protocol="TCP", duration="PT1H")
    assert load("security-jit").validate_request(JIT_INITIATE, initiate_body) == [
        "virtualMachines[0].ports[0].protocol: unexpected property",
        "virtualMachines[0].ports[0].duration: unexpected property"]


@pytest.mark.parametrize("end", ["2018-07-12T09:53:03Z", "2018-07-12T09:53:03.3658798Z", "2018-07-12t09:53:03+02:00"])
def test_initiate_end_time_in_rfc3339_is_accepted(initiate_body, end):
    initiate_body["virtualMachines"][0]["ports"][0]["endTimeUtc"] = end
    assert load("security-jit").validate_request(JIT_INITIATE, initiate_body) == []


@pytest.mark.parametrize("end", ["tomorrow", "2018-07-12T09:53:03", "2018-02-30T09:53:03Z", "2018-07-12 09:53:03Z",
                                 "2018-07-12T25:00:00Z", "2018-07-12T09:53:61Z", "2018-07-12T09:53:03+24:00", ""])
def test_initiate_end_time_not_in_rfc3339_is_a_violation(initiate_body, end):
    initiate_body["virtualMachines"][0]["ports"][0]["endTimeUtc"] = end
    assert load("security-jit").validate_request(JIT_INITIATE, initiate_body) == [
        "virtualMachines[0].ports[0].endTimeUtc: {} is not an RFC 3339 date-time (like 2020-01-01T10:00:00Z)"
        .format(json.dumps(end))]


# --- NSG security rules --------------------------------------------------------------------------------------

def test_rule_priority_as_a_string_is_a_violation(rule_body):
    rule_body["properties"]["priority"] = "100"
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == [
        'properties.priority: expected integer, got string "100"']


def test_rule_priority_has_no_swagger_maximum_only_int32(rule_body):
    """100..4096 appears only in the description, so 5000 passes here (the stand-in's rule checks refuse it);
    what the swagger does declare is format int32."""
    declared = load("network-nsg").document["definitions"]["SecurityRulePropertiesFormat"]["properties"]["priority"]
    assert "maximum" not in declared and declared["format"] == "int32"
    rule_body["properties"]["priority"] = 5000
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == []
    rule_body["properties"]["priority"] = 2 ** 31
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == [
        "properties.priority: 2147483648 does not fit in int32"]


def test_rule_access_maybe_passes_because_the_spec_models_the_enum_as_string(rule_body):
    access = load("network-nsg").document["definitions"]["SecurityRuleAccess"]
    assert access["enum"] == ["Allow", "Deny"] and access["x-ms-enum"]["modelAsString"] is True
    rule_body["properties"]["access"] = "Maybe"
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == []


def test_rule_missing_required_direction_and_unknown_property(rule_body):
    del rule_body["properties"]["direction"]
    rule_body["properties"]["destinationPorts"] = "22"
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == [
        "properties.direction: required property is missing",
        "properties.destinationPorts: unexpected property"]


def test_rule_port_ranges_must_be_arrays_of_strings(rule_body):
    rule_body["properties"]["destinationPortRanges"] = ["22", 3389]
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == [
        "properties.destinationPortRanges[1]: expected string, got number 3389"]


def test_rule_read_only_provisioning_state_is_checked_only_in_responses(rule_body):
    # provisioningState is readOnly through a $ref into network.json, with readOnly also written beside the $ref.
    rule_body["properties"]["provisioningState"] = 7
    assert load("network-nsg").validate_request(RULE_PUT, rule_body) == []
    assert load("network-nsg").validate_response(RULE_PUT, 201, rule_body) == [
        "properties.provisioningState: expected string, got number 7"]


def test_nsg_tags_must_map_to_strings():
    body = {"location": "westus", "tags": {"owner": "me", "cost": 5}}
    assert load("network-nsg").validate_request(NSG_PUT, body) == ["tags.cost: expected string, got number 5"]


def test_nsg_put_echoing_read_only_back_references_is_tolerated():
    body = {"location": "westus", "properties": {"securityRules": [],
                                                 "networkInterfaces": [{"id": "/nic"}], "subnets": [{"id": "/s"}]}}
    assert load("network-nsg").validate_request(NSG_PUT, body) == []


def test_schema_in_a_file_missing_from_the_mirror_raises_rather_than_passing():
    """networkInterface.json is not in the local mirror: a response that reaches it cannot be judged."""
    body = {"location": "westus", "properties": {"networkInterfaces": [{"id": "/nic"}]}}
    with pytest.raises(SpecError, match=r"properties\.networkInterfaces\[0\]: cannot be checked: .*networkInterface"):
        load("network-nsg").validate_response("NetworkSecurityGroups_Get", 200, body)


# --- responses -----------------------------------------------------------------------------------------------

def test_undeclared_success_status_is_a_violation(jit_body):
    assert load("security-jit").validate_response(JIT_PUT, 201, jit_body) == [
        "(response): status 201 is not declared for JitNetworkAccessPolicies_CreateOrUpdate (declared: 200, default)"]


def test_error_statuses_use_the_default_cloud_error_schema():
    spec = load("security-jit")
    assert spec.validate_response(JIT_PUT, 404, {"error": {"code": "NotFound", "message": "gone"}}) == []
    assert spec.validate_response(JIT_PUT, 400, {"code": "BadRequest", "message": "flat"}) == [
        "code: unexpected property", "message: unexpected property"]


def test_response_body_presence_follows_the_declared_schema(jit_body):
    spec = load("security-jit")
    assert spec.validate_response("JitNetworkAccessPolicies_Delete", 200, None) == []
    assert spec.validate_response("JitNetworkAccessPolicies_Delete", 200, {}) == [
        "(body): status 200 of JitNetworkAccessPolicies_Delete declares no body, got an object"]
    assert spec.validate_response("JitNetworkAccessPolicies_Get", 200, None) == [
        "(body): status 200 of JitNetworkAccessPolicies_Get declares a body, got none"]


def test_response_missing_a_required_property_is_a_violation():
    body = _example("GetJitNetworkAccessPoliciesSubscription_example.json")["responses"]["200"]["body"]
    del body["value"][0]["properties"]["requests"][0]["requestor"]
    assert load("security-jit").validate_response("JitNetworkAccessPolicies_List", 200, body) == [
        "value[0].properties.requests[0].requestor: required property is missing"]


def test_response_identity_from_common_types_is_checked():
    """id/name/type come from ../../../common/v1/types.json via allOf: proof the cross-file $ref is followed."""
    body = _example("GetJitNetworkAccessPolicy_example.json")["responses"]["200"]["body"]
    body["name"] = ["default"]
    assert load("security-jit").validate_response("JitNetworkAccessPolicies_Get", 200, body) == [
        "name: expected string, got an array"]


# --- loading -------------------------------------------------------------------------------------------------

def test_load_is_cached_and_knows_two_names():
    assert load("security-jit") is load("security-jit")
    assert load("network-nsg").path.name == "networkSecurityGroup.json"
    with pytest.raises(SpecError, match="unknown spec"):
        load("compute-vm")


def test_unknown_operation_is_a_spec_error():
    with pytest.raises(SpecError, match="no operation 'JitNetworkAccessPolicies_Patch'"):
        load("security-jit").validate_request("JitNetworkAccessPolicies_Patch", {})


def _write(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _thing_spec(path, thing, **definitions):
    """A tiny swagger whose one operation, Thing_Put, takes and returns `thing`."""
    return _write(path, {
        "swagger": "2.0", "info": {"title": "t", "version": "1"},
        "paths": {"/things/{name}": {
            "parameters": [{"name": "name", "in": "path", "required": True, "type": "string"}],
            "put": {"operationId": "Thing_Put",
                    "parameters": [{"name": "thing", "in": "body", "required": True, "schema": thing}],
                    "responses": {"200": {"description": "OK", "schema": thing}}}}},
        "definitions": definitions})


def test_specs_root_can_be_overridden_by_environment(tmp_path, monkeypatch):
    _thing_spec(tmp_path / schema.SPEC_FILES["security-jit"], {"type": "object"})
    monkeypatch.setenv("JIT_STANDIN_SPECS", str(tmp_path))
    spec = load("security-jit")
    assert spec.path == (tmp_path / schema.SPEC_FILES["security-jit"]).resolve()
    assert spec.operation_ids == ["Thing_Put"]
    assert [p["name"] for p in spec.operation("Thing_Put").parameters] == ["name", "thing"]
    monkeypatch.delenv("JIT_STANDIN_SPECS")
    assert "JitNetworkAccessPolicies_Get" in load("security-jit").operation_ids


def test_cross_file_ref_that_climbs_too_far_falls_back_to_the_flattened_layout(tmp_path):
    """As in the mirror: the spec says ../../../common but common sits one level up."""
    _write(tmp_path / "svc" / "common" / "v1" / "types.json",
           {"definitions": {"Port": {"type": "integer", "maximum": 9}}})
    path = _thing_spec(tmp_path / "svc" / "2020" / "spec.json",
                       {"properties": {"port": {"$ref": "../../../common/v1/types.json#/definitions/Port"}}})
    assert SwaggerSpec(path).validate_request("Thing_Put", {"port": 10}) == [
        "port: 10 is greater than the maximum of 9"]


def test_closed_enum_is_enforced_and_open_enum_is_not(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {"properties": {
        "closed": {"type": "string", "enum": ["A", "B"], "x-ms-enum": {"name": "Closed", "modelAsString": False}},
        "bare": {"type": "string", "enum": ["A"]},
        "open": {"type": "string", "enum": ["A"], "x-ms-enum": {"name": "Open", "modelAsString": True}}}}))
    assert spec.validate_request("Thing_Put", {"closed": "C", "bare": "B", "open": "Z"}) == [
        'closed: "C" is not one of "A", "B"', 'bare: "B" is not one of "A"']


def test_allof_unites_properties_and_required(tmp_path):
    spec = SwaggerSpec(_thing_spec(
        tmp_path / "spec.json", {"$ref": "#/definitions/Child"},
        Base={"properties": {"id": {"type": "string"}}, "required": ["id"]},
        Child={"allOf": [{"$ref": "#/definitions/Base"}], "properties": {"size": {"type": "integer"}},
               "required": ["size"]}))
    assert spec.validate_request("Thing_Put", {"id": "a", "size": 1}) == []
    assert spec.validate_request("Thing_Put", {"extra": 1}) == [
        "id: required property is missing", "size: required property is missing", "extra: unexpected property"]


def test_additional_properties_forms(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {"properties": {
        "typed": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "anything": {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
        "closed": {"type": "object", "additionalProperties": False},
        "freeform": {"type": "object"}}}))
    body = {"typed": {"x": 0}, "anything": {"b": [1]}, "closed": {"c": 1}, "freeform": {"d": {"e": None}}}
    assert spec.validate_request("Thing_Put", body) == [
        "typed.x: 0 is less than the minimum of 1", "closed.c: unexpected property"]


def test_string_constraints_and_exclusive_bounds(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {"properties": {
        "code": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[A-Z]+$"},
        "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "exclusiveMaximum": True, "maximum": 1},
        "big": {"type": "integer", "format": "int64"}}}))
    assert spec.validate_request("Thing_Put", {"code": "AB", "ratio": 0.5, "big": 2 ** 40}) == []
    assert spec.validate_request("Thing_Put", {"code": "abcd", "ratio": 1, "big": 2 ** 63}) == [
        'code: "abcd" is longer than the maximum length of 3',
        'code: "abcd" does not match the pattern ^[A-Z]+$',
        "ratio: 1 is greater than the exclusive maximum of 1",
        "big: 9223372036854775808 does not fit in int64"]
    assert spec.validate_request("Thing_Put", {"code": "A", "ratio": 0}) == [
        'code: "A" is shorter than the minimum length of 2', "ratio: 0 is less than the exclusive minimum of 0"]


def test_required_read_only_property_is_required_in_responses_only(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {
        "properties": {"id": {"type": "string", "readOnly": True}, "size": {"type": "integer"}},
        "required": ["id", "size"]}))
    assert spec.validate_request("Thing_Put", {"size": 1}) == []
    assert spec.validate_response("Thing_Put", 200, {"size": 1}) == ["id: required property is missing"]


def test_null_array_items_need_x_nullable(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {"properties": {
        "strict": {"type": "array", "items": {"type": "string"}},
        "lenient": {"type": "array", "items": {"type": "string", "x-nullable": True}}}}))
    assert spec.validate_request("Thing_Put", {"strict": ["a", None], "lenient": [None]}) == [
        "strict[1]: expected string, got null"]


def test_keys_beside_a_ref_win_over_the_target(tmp_path):
    spec = SwaggerSpec(_thing_spec(
        tmp_path / "spec.json",
        {"properties": {"names": {"type": "array", "items": {"$ref": "#/definitions/Name", "x-nullable": True}}}},
        Name={"type": "string", "x-nullable": False}))
    assert spec.validate_request("Thing_Put", {"names": ["a", None]}) == []
    assert spec.validate_request("Thing_Put", {"names": [1]}) == ["names[0]: expected string, got number 1"]


def test_polymorphic_value_is_checked_against_the_subtype_its_discriminator_names(tmp_path):
    base = {"type": "object", "discriminator": "kind", "required": ["kind"],
            "properties": {"kind": {"type": "string"}, "id": {"type": "string"}}}
    spec = SwaggerSpec(_thing_spec(
        tmp_path / "spec.json", {"type": "array", "items": {"$ref": "#/definitions/Base"}}, Base=base,
        Circle={"allOf": [{"$ref": "#/definitions/Base"}], "properties": {"radius": {"type": "integer"}}},
        Square={"allOf": [{"$ref": "#/definitions/Base"}], "x-ms-discriminator-value": "box",
                "properties": {"side": {"type": "integer"}}}))
    assert spec.validate_request("Thing_Put", [{"kind": "Circle", "radius": 1}, {"kind": "box", "side": 2}]) == []
    assert spec.validate_request("Thing_Put", [{"kind": "Circle", "side": 1}]) == ["[0].side: unexpected property"]
    assert spec.validate_request("Thing_Put", [{"kind": "Square"}]) == [
        '[0]: kind "Square" names no subtype of Base']
    assert spec.validate_request("Thing_Put", [{"id": "x"}]) == ["[0]: the discriminator 'kind' is missing"]


def test_polymorphic_schema_is_refused_rather_than_half_checked(tmp_path):
    spec = SwaggerSpec(_thing_spec(tmp_path / "spec.json", {"type": "object", "discriminator": "kind",
                                                            "properties": {"kind": {"type": "string"}}}))
    with pytest.raises(SpecError, match="discriminator"):
        spec.validate_request("Thing_Put", {"kind": "x"})
