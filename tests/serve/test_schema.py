"""Property: no request that the server's own OpenAPI schema allows gets a 5xx, and each is answered
in bounded time; a body the schema does not allow gets a 4xx with a one-line reason. Requests are
drawn by Hypothesis from ``app.openapi()`` (JSON bodies from their schemas, uploads as random bytes
or PNGs of any size and mode), for runs of several families (and a model of volumes)."""
import io
import math
import os
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("hypothesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.serve import create_app  # noqa: E402

# Requests per run: the same ones every time, unless GENLAB_SCHEMA_EXAMPLES asks for (fresh) more
EXAMPLES = int(os.environ.get("GENLAB_SCHEMA_EXAMPLES", 0)) or 40
SECONDS = 5.0          # the most one request may take here
MODES = ("L", "LA", "RGB", "RGBA", "P", "1", "I;16")


def schema_values(schema: dict, spec: dict, info: dict) -> st.SearchStrategy:
    """Values the JSON ``schema`` allows, leaning towards the ones this model takes (its code width,
    its concept names, its test-image indices), so that requests get past the checks too."""
    if "$ref" in schema:
        return schema_values(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]], spec, info)
    if "anyOf" in schema:
        return st.one_of([schema_values(s, spec, info) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        lo = None if lo is None else math.ceil(lo)
        hi = None if hi is None else math.floor(hi)
        if "exclusiveMinimum" in schema:
            lo = math.floor(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            hi = math.ceil(schema["exclusiveMaximum"]) - 1
        near = st.integers(-2, max(info["test_images"], 300) + 2)
        allowed = near.filter(lambda v: (lo is None or v >= lo) and (hi is None or v <= hi))
        return st.one_of(st.integers(lo, hi), allowed)
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        return st.one_of(st.text(max_size=12), st.sampled_from(info["concepts"] or ["ink"]))
    if kind == "array":
        items = schema_values(schema.get("items", {}), spec, info)
        width = info["latent_dim"] or 2
        return st.one_of(st.lists(items, max_size=4), st.lists(items, min_size=width, max_size=width))
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: schema_values(v, spec, info) for k, v in properties.items() if k in required},
            optional={k: schema_values(v, spec, info) for k, v in properties.items() if k not in required})
    return json_values   # no type: anything


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


@st.composite
def pngs(draw, shape) -> bytes:
    """A PNG of any mode, often of the model's size."""
    h, w = shape[-2:]
    height = draw(st.one_of(st.just(h), st.integers(1, 40)))
    width = draw(st.one_of(st.just(w), st.integers(1, 40)))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    mode = draw(st.sampled_from(MODES))
    image = Image.fromarray(pixels)
    if mode == "I;16":   # 16-bit grey
        image = image.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def requests(spec: dict, info: dict) -> st.SearchStrategy:
    """(method, path, keyword arguments of the test client) of every operation in ``spec``."""
    ways = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = schema_values(content["application/json"]["schema"], spec, info)
                ways.append(st.tuples(st.just(method), st.just(path), body.map(lambda b: {"json": b})))
                ways.append(st.tuples(st.just(method), st.just(path), json_values.map(lambda b: {"json": b})))
            elif "multipart/form-data" in content:
                upload = st.one_of(st.binary(max_size=64), pngs(info["image_shape"]))
                ways.append(st.tuples(st.just(method), st.just(path),
                                      upload.map(lambda b: {"files": {"image": ("x.png", b, "image/png")}})))
            else:
                ways.append(st.tuples(st.just(method), st.just(path), st.just({})))
    return st.one_of(ways)


@pytest.fixture(scope="module")
def runs(small_runs, diffusion_runs, volume_run):
    return {"vae": small_runs / "vae", "cgan": small_runs / "cgan", "denoise": small_runs / "denoise",
            "diffusion": diffusion_runs / "short", "volume": volume_run}


@pytest.mark.parametrize("name", ["vae", "cgan", "denoise", "diffusion", "volume"])
def test_no_request_the_schema_allows_gets_a_5xx(runs, name):
    client = TestClient(create_app(runs[name]))
    spec = client.app.openapi()
    info = client.get("/api/info").json()
    seen = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize="GENLAB_SCHEMA_EXAMPLES" not in os.environ,
              suppress_health_check=list(HealthCheck))
    @given(requests(spec, info))
    def answered(request):
        method, path, arguments = request
        started = time.monotonic()
        response = client.request(method, path, **arguments)
        took = time.monotonic() - started
        assert response.status_code < 500, (method, path, arguments, response.status_code, response.text[:300])
        assert took < SECONDS, (method, path, arguments, f"{took:.1f} s")
        if response.status_code >= 400:
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail, detail
        seen.add((path, response.status_code))

    answered()
    assert any(status == 200 for path, status in seen if path.startswith("/api/") and path != "/api/info"), seen
