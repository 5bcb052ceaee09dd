"""The HTTP API: every endpoint, every bad input answered with a 4xx and a one-line reason, and
the server still serving afterwards."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from genlab.registry import load_model
from genlab.train import load_run  # noqa: E402
from genlab.serve import create_app  # noqa: E402
from genlab.serve.app import MAX_UPLOAD_BYTES  # noqa: E402


def client(path):
    return TestClient(create_app(path))


def png_of(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def refused(response, status, words):
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail


@pytest.fixture(scope="module")
def vae(small_runs):
    with client(small_runs / "vae") as c:
        yield c


def test_info_map_and_page(vae):
    info = vae.get("/api/info").json()
    assert info["family"] == "vae" and info["latent_dim"] == 2 and info["capabilities"]["encoder"]
    assert info["image_shape"] == [1, 8, 8] and "label=3" in info["concepts"]
    m = vae.get("/api/map").json()
    assert len(m["points"]) == len(m["labels"]) == info["test_images"] == 300
    page = vae.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "http" not in page.text.split("<script>")[1][:2000]
    assert vae.get("/docs").status_code == 200 and "/api/decode" in vae.get("/openapi.json").text


def test_decode_matches_the_model_and_codes_round_trip(vae, small_runs):
    model = load_model(small_runs / "vae")
    z = [0.3, -0.7]
    got = image(vae.post("/api/decode", json={"z": z}))
    with torch.no_grad():
        expected = model.decode(torch.tensor([z]))[0, 0].numpy()
    scale = (got.shape[0] - 4) // 8   # the grid has a border of 2 pixels
    np.testing.assert_allclose(got[2::scale, 2::scale][:8, :8] / 255.0, expected, atol=1 / 255 + 1e-6)
    pixels = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
    code = vae.post("/api/encode", files={"image": ("x.png", png_of(pixels), "image/png")}).json()["z"]
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(code), model.encode(torch.from_numpy(pixels / 255.0).float()[None, None])[0])
    both = image(vae.post("/api/reconstruct", files={"image": ("x.png", png_of(pixels), "image/png")}))
    assert both.shape[1] > 2 * both.shape[0] - 10  # the upload beside its reconstruction


def test_sample_interpolate_and_concept(vae, small_runs):
    a = image(vae.post("/api/sample", json={"n": 4, "seed": 1}))
    assert np.array_equal(a, image(vae.post("/api/sample", json={"n": 4, "seed": 1})))   # a seed is a seed
    assert not np.array_equal(a, image(vae.post("/api/sample", json={"n": 4, "seed": 2})))
    strip = image(vae.post("/api/interpolate", json={"a": 0, "b": 1, "steps": 5}))
    assert strip.shape[1] > 4 * strip.shape[0]
    codes = image(vae.post("/api/interpolate", json={"a": [0.0, 0.0], "b": [1.0, 1.0], "steps": 3, "spherical": False}))
    assert codes.shape[1] > 2 * codes.shape[0]
    plain = image(vae.post("/api/concept", json={"attribute": "ink", "index": 3, "strength": 0}))
    moved = image(vae.post("/api/concept", json={"attribute": "ink", "index": 3, "strength": 3}))
    assert not np.array_equal(plain, moved)
    run = load_run(small_runs / "vae")
    with torch.no_grad():   # strength 0: test image 3 decoded from its code
        x = run.dataset("test").tensors(slice(3, 4))[0]
        expected = run.model.decode(run.model.encode(x))[0, 0].numpy()
    scale = (plain.shape[0] - 4) // 8
    np.testing.assert_allclose(plain[2::scale, 2::scale][:8, :8] / 255.0, expected, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("path,body,status,words", [
    ("/api/decode", {"z": [0.1]}, 422, "has 2 numbers, got 1"),
    ("/api/decode", {"z": "abc"}, 422, "z"),
    ("/api/decode", {"z": [0.1, 0.2], "label": 3}, 422, "takes no class label"),
    ("/api/sample", {"n": 0}, 422, "n must lie in 1..256"),
    ("/api/sample", {"n": 100000}, 422, "n must lie in 1..256"),
    ("/api/sample", {"n": 2, "steps": 5}, 422, "steps apply to diffusion models"),
    ("/api/sample", {"n": 2, "seed": -1}, 422, "seed"),
    ("/api/interpolate", {"a": 0, "b": 1, "steps": 1}, 422, "steps must lie in 2..64"),
    ("/api/interpolate", {"a": 0, "b": 100000}, 422, "test-image index must lie in 0..299"),
    ("/api/concept", {"attribute": "wings", "index": 1}, 422, "unknown attribute 'wings'"),
    ("/api/concept", {"attribute": "ink"}, 422, "give the image to change"),
    ("/api/concept", {"attribute": "ink", "index": 1, "strength": 99}, 422, "strength"),
])
def test_bad_values_get_a_one_line_reason(vae, path, body, status, words):
    refused(vae.post(path, json=body), status, words)
    assert vae.post("/api/decode", json={"z": [0.0, 0.0]}).status_code == 200   # still serving


def test_bad_uploads_get_a_one_line_reason(vae):
    def upload(content, name="x.png"):
        return vae.post("/api/encode", files={"image": (name, content, "application/octet-stream")})

    refused(upload(b"not an image at all"), 400, "not an image")
    refused(upload(png_of(np.zeros((16, 16), np.uint8))), 422, "takes 8x8 images, got 16x16")
    refused(upload(png_of(np.zeros((8, 8, 3), np.uint8))), 422, "takes grey images (1 channel)")
    refused(upload(b"\x89PNG" + b"0" * (MAX_UPLOAD_BYTES + 10)), 413, "over the 2 MiB limit")
    refused(vae.post("/api/encode"), 422, "image")
    sixteen = png_of((np.arange(64).reshape(8, 8) * 1000).astype(np.uint16))   # 16-bit grey: accepted
    assert len(upload(sixteen).json()["z"]) == 2
    refused(vae.post("/api/translate", files={"image": ("x.png", png_of(np.zeros((8, 8), np.uint8)), "image/png")}),
            400, "not an image-to-image task")
    assert vae.post("/api/decode", json={"z": [0.0, 0.0]}).status_code == 200


def test_no_file_outside_the_run_can_be_read(vae):
    for path in ("/../../etc/passwd", "/api/../../etc/passwd", "/static/../config.json", "/model.safetensors"):
        response = vae.get(path)
        assert response.status_code == 404 and "root:" not in response.text


def test_a_conditional_gan_and_pca_serve_what_they_can(small_runs):
    gan = client(small_runs / "cgan")
    info = gan.get("/api/info").json()
    assert info["capabilities"]["labels"] and not info["capabilities"]["encoder"] and info["map_source"] == "draws from the prior"
    assert len(gan.get("/api/map").json()["points"]) == 500
    z = [0.0] * info["latent_dim"]
    assert not np.array_equal(image(gan.post("/api/decode", json={"z": z, "label": 1})),
                              image(gan.post("/api/decode", json={"z": z, "label": 7})))
    refused(gan.post("/api/decode", json={"z": z}), 422, "class-conditional: give a label")
    refused(gan.post("/api/decode", json={"z": z, "label": 10}), 422, "label must lie in 0..9")
    image(gan.post("/api/sample", json={"n": 10, "label": 3}))
    refused(gan.post("/api/encode", files={"image": ("x.png", png_of(np.zeros((8, 8), np.uint8)), "image/png")}),
            400, "needs a model with an encoder")
    refused(gan.post("/api/interpolate", json={"a": 0, "b": 1}), 400, "needs a model with an encoder")
    image(gan.post("/api/interpolate", json={"a": z, "b": [1.0] * len(z), "label": 2}))
    pca = client(small_runs / "pca")
    assert pca.get("/api/info").json()["capabilities"]["closed_form"]
    image(pca.post("/api/decode", json={"z": [0.0] * 4}))
    refused(pca.post("/api/translate", files={"image": ("x.png", png_of(np.zeros((8, 8), np.uint8)), "image/png")}),
            400, "not an image-to-image task")


def test_a_denoise_run_translates_uploads(small_runs):
    from genlab.commands.translate import translate_images

    denoise = client(small_runs / "denoise")
    info = denoise.get("/api/info").json()
    assert info["capabilities"]["condition_image"] and info["latent_dim"] is None
    pixels = (np.random.default_rng(0).random((12, 10)) * 255).astype(np.uint8)   # any size the U-Net takes
    got = image(denoise.post("/api/translate", files={"image": ("x.png", png_of(pixels), "image/png")}))
    assert got.shape == (12, 10)
    expected = translate_images(load_model(small_runs / "denoise"), torch.from_numpy(pixels / 255.0).float()[None, None])
    np.testing.assert_allclose(got / 255.0, expected[0, 0].numpy(), atol=1 / 255 + 1e-6)

    def upload(content):
        return denoise.post("/api/translate", files={"image": ("x.png", content, "application/octet-stream")})

    refused(upload(b"not an image"), 400, "not an image")
    refused(upload(png_of(np.zeros((8, 8, 3), np.uint8) + np.array([255, 0, 0], np.uint8))), 422,
            "trained on 1-channel (grey) images")
    refused(upload(png_of(np.zeros((1, 1), np.uint8))), 422, "too small for this denoise model")
    refused(denoise.post("/api/decode", json={"z": [0.0]}), 400, "has no decoder")
    assert upload(png_of(pixels)).status_code == 200   # still serving


def test_an_image_to_image_run_shows_test_images_before_and_after(small_runs):
    from genlab.data import load_dataset

    denoise = client(small_runs / "denoise")
    test = load_dataset("digits", "test")
    np.testing.assert_array_equal(image(denoise.get("/api/test-image?index=3")),
                                  (test.tensors(slice(3, 4))[0][0, 0].numpy() * 255).round())
    answer = denoise.post("/api/preview", json={"index": 3, "seed": 1}).json()
    assert answer["names"] == ["input", "output", "target"]
    rows = [np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))) for url in answer["rows"]]
    assert [r.shape for r in rows] == [(8, 8)] * 3
    assert np.array_equal(rows[2], image(denoise.get("/api/test-image?index=3")))   # the target: the test image
    assert not np.array_equal(rows[0], rows[2])                                      # the input: a noisy one
    again = denoise.post("/api/preview", json={"index": 3, "seed": 1}).json()
    assert again == answer and denoise.post("/api/preview", json={"index": 3, "seed": 2}).json() != answer
    refused(denoise.post("/api/preview", json={"index": 300}), 422, "index must lie in 0..299")
    refused(denoise.get("/api/volume/slice"), 400, "makes images, not volumes")
    refused(client(small_runs / "vae").post("/api/preview", json={"index": 0}), 400, "has no preview")


def test_a_volume_run_serves_slices_and_files(volume_run):
    volumes = client(volume_run)
    info = volumes.get("/api/info").json()
    assert info["spatial_dims"] == 3 and info["image_shape"] == [1, 16, 16, 16]
    npy = volumes.get("/api/volume.npy?seed=5")
    assert npy.status_code == 200 and 'filename="sample-5.npy"' in npy.headers["content-disposition"]
    volume = np.load(io.BytesIO(npy.content))
    assert volume.shape == (16, 16, 16) and volume.dtype == np.float32 and 0 <= volume.min() <= volume.max() <= 1
    for axis, index in ((0, 3), (1, 8), (2, 15)):
        got = image(volumes.get(f"/api/volume/slice?seed=5&axis={axis}&index={index}"))
        np.testing.assert_array_equal(got, (np.take(volume, index, axis) * 255).round())
    assert image(volumes.get("/api/volume/slice?seed=5")).shape == (16, 16)     # the middle slice across depth
    assert not np.array_equal(image(volumes.get("/api/volume/slice?seed=6")), image(volumes.get("/api/volume/slice?seed=5")))
    test = np.load(io.BytesIO(volumes.get("/api/volume.npy?test=2").content))
    assert set(np.unique(test)) <= {0.0, 1.0}   # a cube of the segmented training volume
    refused(volumes.get("/api/volume/slice?seed=5&index=16"), 422, "index must lie in 0..15")
    refused(volumes.get("/api/volume/slice?test=8"), 422, "test-image index must lie in 0..7")
    refused(volumes.post("/api/preview", json={"index": 0}), 400, "has no preview")
    refused(volumes.post("/api/encode", files={"image": ("x.png", png_of(np.zeros((16, 16), np.uint8)), "image/png")}),
            400, "takes volumes (C, D, H, W), not image uploads")   # was a 500


def test_the_api_docs_load_nothing_from_another_host(small_runs):
    import re

    from genlab.serve.app import api_page

    vae = client(small_runs / "vae")
    page = vae.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert re.findall(r"https?://[^\s\"'<>]+", page.text) == []
    for asset in re.findall(r"(?:src|href)=[\"']?(/[^\"' >]+)", page.text):
        assert vae.get(asset).status_code == 200, asset   # every script, style and icon is served here
    assert vae.get("/redoc").status_code == 404   # ReDoc would load its logo from its CDN
    plain = api_page(vae.app.openapi())   # the docs without the fastapi-offline package
    assert "http" not in plain.replace('href="/openapi.json"', "")
    assert all(f"<code>{path}</code>" in plain for path in vae.app.openapi()["paths"])


def test_decodes_from_several_clients_are_batched(small_runs):
    import asyncio

    app = create_app(small_runs / "vae")
    batcher = app.state.batcher

    async def many():
        codes = [torch.tensor([0.1 * i, -0.1 * i]) for i in range(12)]
        return await asyncio.gather(*(batcher.decode(z, None) for z in codes))

    pictures = asyncio.run(many())
    assert len(pictures) == 12 and len(set(pictures)) > 1
    assert batcher.requests == 12 and batcher.batches < 12   # decoded together, not one by one


def png_header(width, height):
    """A small PNG file whose header declares a ``width`` x ``height`` grey image (its data is a stub)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_seeds_beyond_torch_and_mixed_path_ends_get_a_4xx(vae):
    for seed in (2 ** 64, 2 ** 70, -1):
        refused(vae.post("/api/sample", json={"n": 1, "seed": seed}), 422, "seed")
    image(vae.post("/api/sample", json={"n": 1, "seed": 2 ** 64 - 1}))
    strip = image(vae.post("/api/interpolate", json={"a": 3, "b": [0.5, -0.5], "steps": 3}))
    assert strip.shape[1] > 2 * strip.shape[0]
    image(vae.post("/api/interpolate", json={"a": [0.5, -0.5], "b": 3, "steps": 3}))


def test_huge_images_in_small_files_are_refused_from_their_header(vae, small_runs):
    def upload(path, content):
        return c.post(path, files={"image": ("x.png", content, "image/png")})

    c = vae
    for size in ((20000, 20000), (5000, 5000)):   # over PIL's own bomb limit, and over ours only
        refused(upload("/api/encode", png_header(*size)), 413, "pixels")
        refused(upload("/api/reconstruct", png_header(*size)), 413, "pixels")
    c = client(small_runs / "denoise")
    refused(upload("/api/translate", png_header(20000, 20000)), 413, "pixels")
    assert len(vae.post("/api/encode", files={"image": ("x.png", png_of(np.zeros((8, 8), np.uint8)),
                                                         "image/png")}).json()["z"]) == 2   # still serving


def test_bodies_over_the_limit_are_refused_before_they_are_read(vae):
    import asyncio

    from genlab.serve.app import MAX_BODY_BYTES

    refused(vae.post("/api/decode", content=b"0" * (MAX_BODY_BYTES + 1),
                     headers={"content-type": "application/json"}), 413, "over the limit")
    refused(vae.post("/api/decode", content=iter([b"0" * 2 ** 20] * 3),   # chunked: no Content-Length
                     headers={"content-type": "application/json"}), 413, "over the limit")
    sent, reads = [], []

    async def receive():   # a 600 MiB body announced: not one chunk of it may be read
        reads.append(1)
        return {"type": "http.request", "body": b"0" * 1024, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/encode", "raw_path": b"/api/encode", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=x"),
                         (b"content-length", str(600 * 2 ** 20).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
    asyncio.run(vae.app(scope, receive, send))
    assert sent[0]["status"] == 413 and not reads


def test_only_the_hosts_the_server_is_bound_for_are_answered(vae, small_runs):
    from genlab.serve.app import hosts_for

    assert vae.get("/api/info", headers={"host": "evil.example"}).status_code == 400   # DNS rebinding
    assert vae.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert vae.get("/api/info", headers={"host": host}).status_code == 200, host
    assert hosts_for("0.0.0.0") == ["*"] and "evil.example" not in hosts_for("127.0.0.1")
    assert set(hosts_for("127.0.0.1")) == {"localhost", "127.0.0.1", "[::1]"} and "[::1]" in hosts_for("::1")
    anywhere = TestClient(create_app(small_runs / "pca", allowed_hosts=["*"]))
    assert anywhere.get("/api/info", headers={"host": "lab.example"}).status_code == 200


def test_serve_refuses_a_bad_port_in_one_line(small_runs, capsys):
    import socket

    from genlab.cli import main

    def serve(*argv):
        code = main(["serve", str(small_runs / "vae"), *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and "Traceback" not in err, err
        return err

    assert "1..65535" in serve("--port", "99999")
    assert "1..65535" in serve("--port", "-1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert "in use" in serve("--host", "127.0.0.1", "--port", str(busy.getsockname()[1]))
