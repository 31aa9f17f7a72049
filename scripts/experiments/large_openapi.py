# A large OpenAPI 3.0 document for the import benchmark (docs/benchmarks.md): many operations,
# thousands of $refs (allOf, nested models), a few MB. Usage: python3 large_openapi.py <paths> <out.json>
import json, sys
ops = int(sys.argv[1]); out = sys.argv[2]
schemas = {}
for i in range(600):
    props = {f"field{j}": {"type": "string", "description": "x" * 160} for j in range(12)}
    if i > 0:
        props["parent"] = {"$ref": f"#/components/schemas/Model{i-1 if i % 10 else 0}"}
        props["related"] = {"type": "array", "items": {"$ref": f"#/components/schemas/Model{(i*7)%i}"}}
    schemas[f"Model{i}"] = {"type": "object", "properties": props, "description": "model " * 20}
paths = {}
for k in range(ops):
    m = k % 600
    p = f"/resource{k}/{{id}}"
    paths[p] = {
        "get": {"operationId": f"getResource{k}", "summary": f"Get resource {k}", "tags": ["orders" if k % 2 else "billing"],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"$ref": "#/components/parameters/Limit"}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/Model{m}"}}}}}},
        "post": {"operationId": f"updateResource{k}", "summary": f"Update resource {k}",
                 "requestBody": {"content": {"application/json": {"schema": {"allOf": [{"$ref": f"#/components/schemas/Model{m}"}, {"$ref": f"#/components/schemas/Model{(m+1)%600}"}]}}}},
                 "responses": {"200": {"description": "ok"}}},
    }
doc = {"openapi": "3.0.3", "info": {"title": "Big", "version": "1"}, "servers": [{"url": "https://api.example.com"}],
       "paths": paths, "components": {"schemas": schemas, "parameters": {"Limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}}}}}
json.dump(doc, open(out, "w"))
refs = json.dumps(doc).count("$ref")
print(f"{ops} paths, {2*ops} operations, {refs} $refs, {len(json.dumps(doc))/1e6:.1f} MB")
