"""The simulator's Panopto REST answers validated against Panopto's own OpenAPI document.

Each GET below is answered by the simulator and its JSON body validated (jsonschema) against
the 200 response schema of the matching operation in `panoptoApi.yaml`: required members,
types, enumerations, nested objects. The document's nullability is known to be unreliable
(real responses carry null where it says non-nullable, see its README), so null is accepted
everywhere and each such place is reported as a quirk, not a failure.
Usage: panopto_openapi.py SPEC BASE TOKEN FOLDER_ID SESSION_ID ROOM. Prints the quirks, then "ok".
"""
import copy
import sys

import jsonschema
import requests
import yaml

spec_path, base, token, folder, session, room = sys.argv[1:7]
spec = yaml.safe_load(open(spec_path))


def nullable_everywhere(node, quirks, where):
    """A copy of a schema where every value may also be null; notes where the spec says no."""
    if isinstance(node, list):
        return [nullable_everywhere(n, quirks, where) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable_everywhere(v, quirks, where + [k]) for k, v in node.items()}
    out.pop("nullable", None)
    if "$ref" in out:
        return {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


components = nullable_everywhere(copy.deepcopy(spec["components"]), [], [])


def strict_nulls(body, schema, path, quirks):
    """Where the body is null but the spec's property is not declared nullable."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["components"]["schemas"][name]
    if isinstance(body, dict):
        for k, v in body.items():
            prop = schema.get("properties", {}).get(k)
            if prop is None:
                continue
            if v is None and not prop.get("nullable", False):
                quirks.add("{}.{} is null".format(path, k))
            elif v is not None:
                strict_nulls(v, prop, path + "." + k, quirks)
    elif isinstance(body, list) and "items" in schema:
        for v in body:
            strict_nulls(v, schema["items"], path + "[]", quirks)


def operation(template):
    op = spec["paths"][template]["get"]
    return op["responses"]["200"]["content"]["application/json"]["schema"]


CHECKS = [
    ("/api/v1/folders/{id}", "/api/v1/folders/" + folder),
    ("/api/v1/folders/search", "/api/v1/folders/search?searchQuery=Fall"),
    ("/api/v1/folders/{id}/children", "/api/v1/folders/{}/children".format(folder)),
    ("/api/v1/folders/{id}/sessions", "/api/v1/folders/{}/sessions".format(folder)),
    ("/api/v1/folders/{id}/settings/access", "/api/v1/folders/{}/settings/access".format(folder)),
    ("/api/v1/folders/{id}/permissions", "/api/v1/folders/{}/permissions".format(folder)),
    ("/api/v1/sessions/{id}", "/api/v1/sessions/" + session),
    ("/api/v1/sessions/search", "/api/v1/sessions/search?searchQuery=2025"),
    ("/api/v1/sessions/{id}/settings/access", "/api/v1/sessions/{}/settings/access".format(session)),
    ("/api/v1/sessions/{id}/permissions", "/api/v1/sessions/{}/permissions".format(session)),
    ("/api/v1/scheduledRecordings/{id}", "/api/v1/scheduledRecordings/" + session),
    ("/api/v1/remoteRecorders/search", "/api/v1/remoteRecorders/search?searchQuery=" + room),
    ("/api/v1/users/search", "/api/v1/users/search?searchQuery=a"),
    ("/api/v1/groups/search", "/api/v1/groups/search?searchQuery=canvas"),
    (
        "/api/v1/searchIndexSync/updates",
        "/api/v1/searchIndexSync/updates?fromDate=2025-08-01T00:00:00Z",
    ),
    ("/api/v1/searchIndexSync/content", "/api/v1/searchIndexSync/content?id=" + session),
]

quirks = set()
for template, path in CHECKS:
    r = requests.get(base + "/Panopto" + path, headers={"Authorization": "Bearer " + token})
    if r.status_code != 200:
        raise AssertionError("{} answered {}: {}".format(path, r.status_code, r.text[:200]))
    body = r.json()
    schema = operation(template)
    wrapped = dict(nullable_everywhere(copy.deepcopy(schema), [], []))
    wrapped["components"] = components
    try:
        jsonschema.validate(body, wrapped)
    except jsonschema.ValidationError as e:
        raise AssertionError("{}: {} at {}".format(template, e.message, list(e.absolute_path)))
    strict_nulls(body, schema, template, quirks)
for q in sorted(quirks):
    print("quirk:", q)
print("ok")
