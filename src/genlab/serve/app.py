"""An HTTP API over one trained run, and the latent explorer page, built on FastAPI.

The run is fixed when the app is made: no request names a file, so nothing outside the run folder
(and its dataset) can be read through the API. Images travel as PNG, codes as JSON. What a model
can do is read from its capabilities; an endpoint the model cannot serve answers 400 with the
reason, a bad value 422 with a one-line reason, and the server keeps serving.

Decode requests from several clients at once are batched: requests that arrive while the model
is busy are decoded together in one call (:class:`DecodeBatcher`).

The model's work for a request is bounded: a sample request asks for at most
:data:`MAX_SAMPLE_WORK` samples times denoising steps, and the work stops (:class:`Job`) when its
client leaves, when it has taken :data:`WORK_SECONDS`, or when the server stops, so that neither a
client that gave up nor a stop waits for it. ``genlab serve`` (:func:`serve`) also closes
connections whose request does not arrive in time (:func:`timed_protocol`).

The page at ``/`` (``explorer.html``) shows what the model's capabilities allow: the latent map
for a model with a latent space, before and after for an image-to-image run, slices for a volume
model; the API docs at ``/docs`` load their scripts from this server, not from a CDN
(:func:`add_docs`).
"""

import asyncio
import base64
import contextlib
import dataclasses
import errno
import html
import importlib.util
import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import GenlabError, check_seed
from ..image_files import MAX_IMAGE_PIXELS, ImageTooLarge, NotAnImage, load_image, open_image, png_of
from ..registry import family_of
from ..latent.codes import decode_codes, encode_dataset, encode_images
from ..latent.concept import attribute_masks, concept_vector
from ..latent.interpolate import interpolation_path
from ..latent.prior import draw_codes
from ..models.base import NotSupported
from ..sampling import draw_samples
from ..train import Run, load_run
from ..viz import auto_scale, make_grid
from ..viz.grid import planar, png_bytes

PAGE = Path(__file__).with_name("explorer.html")
MAX_UPLOAD_BYTES = 2 * 2 ** 20
MAX_SAMPLES = 256
MAX_STEPS = 64          # points on an interpolation path
MAP_POINTS = 2000       # test codes (or prior draws) on the map
MAX_TRANSLATE_PIXELS = 2 ** 22   # pixels of a translated image (4 Mpixel)
MAX_UPLOAD_PIXELS = MAX_IMAGE_PIXELS   # pixels of an uploaded image, read from its header before it is decoded
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 2 ** 16   # a request body: an upload and its multipart framing
MAX_SEED = 2 ** 64               # seeds lie in 0..2**64 - 1 (what torch takes)
MAX_SAMPLE_WORK = 2 ** 14        # samples times denoising steps of one sample request (256 x 64, 16 x 1,024)
WORK_SECONDS = 120.0             # the model's time for one request, at most
POLL_SECONDS = 0.1               # how often a request at work looks whether its client is still there
HEADER_SECONDS = 10.0            # a request's line and headers are due this long after the connection
                                 # opens (or after the last response on it) ...
BODY_SECONDS = 30.0              # ... and its body this long after its headers
STOPPING = "the server is stopping"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
VOLUMES_KEPT = 4                 # sampled volumes kept for their slices (the latest ones)
DOCS_ASSETS = "/docs-assets"     # where the API docs' scripts and styles are served from


class BadRequest(Exception):
    """A request this model cannot serve (400) or with a bad value (422)."""

    def __init__(self, reason: str, status: int = 422):
        super().__init__(reason)
        self.status = status


class Stopped(BadRequest):
    """The model's work for a request was stopped before its end: its client left (499), it ran
    over its time (503) or the server is stopping (503)."""


class Job:
    """One call on the model's worker thread, and the reason it must stop, once it must. Every
    module of the model looks (:meth:`check`) before its forward pass, so that the work stops
    within one layer's time of :meth:`stop` or of its deadline."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline: float | None = None
        self.reason: tuple[str, int] | None = None

    def stop(self, reason: str, status: int = 503) -> None:
        if self.reason is None:
            self.reason = (reason, status)

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds
        self.check()

    def check(self) -> None:
        if self.reason is None and self.deadline is not None and time.monotonic() > self.deadline:
            self.stop(f"the request ran over this server's limit of {self.seconds:g} s of model time; "
                      "ask for less (fewer samples or steps)")
        if self.reason is not None:
            raise Stopped(*self.reason)


async def watch_client(request, job: Job) -> None:
    """Stops ``job`` once the client of ``request`` has left (looked at every :data:`POLL_SECONDS`)."""
    try:
        while not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
    except Exception:   # nothing to watch: the work goes on
        return
    job.stop("the client left", 499)


def open_upload(content: bytes) -> Image.Image:
    """An uploaded image, its header read but its pixels not yet decoded: 413 if it is over
    :data:`MAX_UPLOAD_BYTES` or its header says it has over :data:`MAX_UPLOAD_PIXELS` pixels (a
    small file can hold a huge image), 400 if it is not an image."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise BadRequest(f"the upload is over the {MAX_UPLOAD_BYTES // 2 ** 20} MiB limit", 413)
    try:
        return open_image(content, "the upload", MAX_UPLOAD_PIXELS)
    except ImageTooLarge as err:
        raise BadRequest(str(err), 413) from None
    except NotAnImage as err:
        raise BadRequest(str(err), 400) from None


def load_pixels(image: Image.Image) -> Image.Image:
    """``image`` decoded (after :func:`open_upload` checked its size); 400 if its data is broken."""
    try:
        return load_image(image, "the upload")
    except NotAnImage as err:
        raise BadRequest(str(err), 400) from None


def _png(images: torch.Tensor, nrow: int | None = None) -> bytes:
    return png_bytes(make_grid(images.clamp(0, 1), nrow=nrow, scale=auto_scale(images)))


class Explorer:
    """The run, its map and its model calls; every model call runs on one worker thread
    (:meth:`call`), as a :class:`Job` that stops early when it must."""

    def __init__(self, run: Run, data_dir=None, work_seconds: float = WORK_SECONDS):
        self.run, self.model = run, run.model
        self.able = self.model.capabilities
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genlab-model")
        self.work_seconds = work_seconds
        self.stopped = 0   # calls stopped before their end
        self._jobs: set[Job] = set()   # touched on the event loop only
        self._stopping: str | None = None
        self._running = threading.local()   # the job on the worker thread
        for module in self.model.modules():
            module.register_forward_pre_hook(self._look)
        self._concepts: dict[str, torch.Tensor] = {}
        self._volumes: dict[tuple[str, int], torch.Tensor] = {}   # the latest volumes shown, for their slices
        self.data = None
        try:
            self.data = run.dataset("test", data_dir).subset(slice(0, MAP_POINTS))
        except GenlabError:
            pass  # a run without a loadable dataset still samples and decodes
        self.map = self._map()

    # ------------------------------------------------------------------ calls on the worker
    def _look(self, module, args) -> None:
        job = getattr(self._running, "job", None)
        if job is not None:   # only on the worker thread, inside a call
            job.check()

    def _do(self, job: Job, fn, args):
        self._running.job = job
        try:
            job.start()
            return fn(*args)
        except Stopped:
            self.stopped += 1
            raise
        finally:
            self._running.job = None

    async def call(self, fn, *args, request=None):
        """``fn(*args)`` on the model's worker thread. It stops (:class:`Stopped`) when the client
        of ``request`` leaves, after :attr:`work_seconds`, or when the server stops (:meth:`stop`),
        at the next forward pass of one of the model's modules."""
        job = Job(self.work_seconds)
        if self._stopping is not None:
            job.stop(self._stopping)
        self._jobs.add(job)
        watcher = None if request is None else asyncio.ensure_future(watch_client(request, job))
        try:
            return await asyncio.get_running_loop().run_in_executor(self.worker, self._do, job, fn, args)
        except asyncio.CancelledError:   # the server gave up waiting: the work stops too
            job.stop(STOPPING)
            raise
        finally:
            self._jobs.discard(job)
            if watcher is not None:
                watcher.cancel()

    def stop(self, reason: str = STOPPING) -> None:
        """Stops the work in flight and refuses new work (503), until :meth:`resume`."""
        self._stopping = reason
        for job in list(self._jobs):
            job.stop(reason)

    def resume(self) -> None:
        self._stopping = None

    # ------------------------------------------------------------------ the map
    def _map(self) -> dict[str, Any]:
        """2-D points of the test codes (or of draws from the prior), their classes, and the plane
        that lifts a point back to a code: z = mean + x * axes[0] + y * axes[1]."""
        if not self.able.latent_space:
            return {"points": [], "labels": None, "mean": [], "axes": [], "source": "none"}
        width = self.model.latent_dim
        if self.able.encoder and self.data is not None:
            codes, labels = encode_dataset(self.model, self.data)
            source = "test codes"
        else:
            codes, labels = draw_codes(self.model, min(MAP_POINTS, 500))
            source = "draws from the prior"
        codes = codes.double()
        if width <= 2:
            mean = torch.zeros(width, dtype=torch.float64)
            axes = torch.eye(2, width, dtype=torch.float64)
        else:  # the plane of the two directions of largest variance
            mean = codes.mean(0)
            axes = torch.linalg.svd(codes - mean, full_matrices=False).Vh[:2]
        points = (codes - mean) @ axes.T
        self.codes = codes.float()  # the concept vectors are means of these
        return {"points": points.tolist(), "labels": None if labels is None else labels.tolist(),
                "mean": mean.tolist(), "axes": axes.tolist(), "source": source}

    def info(self) -> dict[str, Any]:
        model, cfg = self.model, self.model.config
        width = model.latent_dim if self.able.latent_space else None
        names = (self.data.class_names if self.data is not None else None) or \
            ([str(i) for i in range(cfg.num_classes)] if cfg.num_classes else None)
        return {"name": model.name, "family": model.family, "capabilities": dataclasses.asdict(self.able),
                "image_shape": list(cfg.image_shape), "spatial_dims": len(cfg.image_shape) - 1,
                "latent_dim": width, "num_classes": cfg.num_classes,
                "class_names": names, "test_images": 0 if self.data is None else len(self.data),
                "timesteps": getattr(cfg, "timesteps", None), "sample_steps": getattr(cfg, "sample_steps", None),
                "map_source": self.map["source"], "concepts": self.concept_names(), "limits": {
                    "samples": MAX_SAMPLES, "interpolation_steps": MAX_STEPS, "upload_bytes": MAX_UPLOAD_BYTES,
                    "sample_work": MAX_SAMPLE_WORK, "work_seconds": self.work_seconds}}

    def concept_names(self) -> list[str]:
        if not (self.able.encoder and self.data is not None):
            return []
        names = ["ink"]
        if self.data.labels is not None:
            names += [f"label={c}" for c in self.data.class_names or []]
        return names + list(self.data.attribute_names)

    # ------------------------------------------------------------------ checks
    def code(self, z: list[float]) -> torch.Tensor:
        width = self.model.latent_dim
        if len(z) != width:
            raise BadRequest(f"a latent code of this model has {width} numbers, got {len(z)}")
        t = torch.tensor(z, dtype=torch.float32)
        if not torch.isfinite(t).all():
            raise BadRequest("a latent code must hold finite numbers")
        return t

    def label(self, label: int | None, n: int = 1) -> torch.Tensor | None:
        if label is None:
            if self.able.labels:
                raise BadRequest("this model is class-conditional: give a label")
            return None
        if not self.able.labels:
            raise BadRequest(f"a {self.model.name} model takes no class label")
        k = self.model.config.num_classes
        if not 0 <= label < k:
            raise BadRequest(f"label must lie in 0..{k - 1}, got {label}")
        return torch.full((n,), label, dtype=torch.long)

    def test_image(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.data is None:
            raise BadRequest("this run records no loadable dataset", 400)
        if not 0 <= index < len(self.data):
            raise BadRequest(f"test-image index must lie in 0..{len(self.data) - 1}, got {index}")
        x, y = self.data.tensors(slice(index, index + 1))
        return x, y

    def upload(self, content: bytes) -> torch.Tensor:
        """An uploaded image as (1, C, H, W) in [0, 1], of the model's shape."""
        image = open_upload(content)   # the header only: the size is checked before the pixels are decoded
        if len(self.model.config.image_shape) != 3:
            raise BadRequest(f"a {self.model.name} model takes volumes (C, D, H, W), not image uploads", 400)
        c, h, w = self.model.config.image_shape
        if (image.width, image.height) != (w, h):
            raise BadRequest(f"this model takes {w}x{h} images, got {image.width}x{image.height}")
        load_pixels(image)
        wide = image.mode == "I" or image.mode.startswith("I;16")  # 16-bit grey
        grey = wide or image.mode in ("1", "L", "LA", "F")
        if c == 1 and not grey:
            raise BadRequest(f"this model takes grey images (1 channel), got a {image.mode} image")
        if c == 3 and grey:
            raise BadRequest(f"this model takes colour images (3 channels), got a {image.mode} image")
        if wide:
            pixels = np.asarray(image, dtype=np.float64) / 65535.0
        else:
            pixels = np.asarray(image.convert("L" if c == 1 else "RGB"), dtype=np.float64) / 255.0
        x = torch.from_numpy(pixels).float()
        return (x[None, None] if c == 1 else x.permute(2, 0, 1)[None]).clamp(0, 1)

    # ------------------------------------------------------------------ the model's work
    def decode_many(self, codes: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return decode_codes(self.model, codes, labels)

    def sample(self, n: int, seed: int, label: int | None, steps: int | None, guidance: float | None) -> bytes:
        if not 1 <= n <= MAX_SAMPLES:
            raise BadRequest(f"n must lie in 1..{MAX_SAMPLES}, got {n}")
        if steps is not None and not self.able.denoising_sampler:
            raise BadRequest(f"steps apply to diffusion models; a {self.model.name} model samples in one pass")
        if label is not None:
            self.label(label)
        if self.able.denoising_sampler:
            count = getattr(self.model.config, "sample_steps", 1) if steps is None else steps
            if n * count > MAX_SAMPLE_WORK:
                raise BadRequest(f"n x steps (samples times denoising steps) must be at most {MAX_SAMPLE_WORK:,}, "
                                 f"got {n} x {count}; ask for fewer samples or steps")
        images, _ = draw_samples(self.model, n, seed, label, steps, guidance)
        return _png(images)

    def encode(self, x: torch.Tensor) -> list[float]:
        self._needs("encoder", "encoding")
        if self.able.labels:
            raise BadRequest("a class-conditional model needs the image's class to encode it; use a test image", 400)
        return encode_images(self.model, x)[0].tolist()

    def reconstruct(self, x: torch.Tensor) -> bytes:
        self._needs("encoder", "reconstruction")
        if self.able.labels:
            raise BadRequest("a class-conditional model needs the image's class to reconstruct it", 400)
        return _png(torch.cat([x, self.decode_many(encode_images(self.model, x), None)]))

    def interpolate(self, a, b, steps: int, spherical: bool, label: int | None) -> bytes:
        if not 2 <= steps <= MAX_STEPS:
            raise BadRequest(f"steps must lie in 2..{MAX_STEPS}, got {steps}")
        (za, la), (zb, lb) = self._end(a, label), self._end(b, label)
        labels = None if la is None else (int(la), int(lb))
        _, images = interpolation_path(self.model, za, zb, steps, spherical, labels)
        return _png(images, nrow=steps)

    def _end(self, end, label: int | None) -> tuple[torch.Tensor, int | None]:
        """A path end: a test-image index (its code and class) or a code (with ``label``)."""
        if isinstance(end, int):
            self._needs("encoder", "paths between test images")
            x, y = self.test_image(end)
            # the test image's class matters only to a class-conditional model
            return encode_images(self.model, x, y)[0], None if y is None or not self.able.labels else int(y[0])
        z = self.code(end)
        y = self.label(label)
        return z, None if y is None else int(y[0])

    def concept(self, attribute: str, z: list[float] | None, index: int | None, strength: float) -> bytes:
        self._needs("encoder", "concept vectors")
        if self.data is None:
            raise BadRequest("concept vectors need the run's test images, and this run records no dataset", 400)
        if attribute not in self._concepts:
            if attribute not in self.concept_names():
                raise BadRequest(f"unknown attribute {attribute!r}; this run has: {', '.join(self.concept_names())}")
            with_mask, without = attribute_masks(self.data, attribute)
            self._concepts[attribute] = concept_vector(self.codes, with_mask, without)
        if index is not None:
            x, y = self.test_image(index)
            code, labels = encode_images(self.model, x, y)[0], y
        elif z is not None:
            code, labels = self.code(z), None
            if self.able.labels:
                raise BadRequest("a class-conditional model needs a test-image index here (it gives the class)")
        else:
            raise BadRequest("give the image to change: a test-image index or a latent code z")
        return _png(self.decode_many((code + strength * self._concepts[attribute])[None], labels))

    def translate(self, content: bytes) -> bytes:
        """An uploaded image translated by the model, as a PNG of the output itself (no grid). The
        model reads the upload as its input (``condition_from_image``: a model that takes grey
        input makes a colour upload grey) and says how large the result is (``result_size``)."""
        picture = open_upload(content)   # the header only: sizes are checked before the pixels are decoded
        height, width = self.model.result_size(picture.height, picture.width)
        if height * width > MAX_TRANSLATE_PIXELS:
            raise BadRequest(f"the result would have {height * width:,} pixels, over the limit of "
                             f"{MAX_TRANSLATE_PIXELS:,}; send a smaller image", 413)
        load_pixels(picture)
        x, _ = self.model.condition_from_image(picture, "the upload")
        with torch.no_grad():
            result = self.model.translate(x.to(self.model.device))[0].cpu()
        return png_bytes(png_of(result))

    # ------------------------------------------------------------------ test images, previews, volumes
    def test_png(self, index: int) -> bytes:
        """Test image ``index`` as a PNG of its own size (a volume: its middle slice)."""
        x, _ = self.test_image(index)
        return png_bytes(png_of(planar(x)[0]))

    def preview_names(self) -> list[str]:
        """What the rows of the model's ``preview`` show, read from its capabilities."""
        if self.able.domain_transfer:
            return ["A", "A to B", "B", "B to A"]
        if self.able.condition_image:
            return ["input", "output", "target"]
        return ["input", "output"]

    def preview(self, index: int, seed: int) -> dict[str, Any]:
        """The rows of the model's ``preview`` (its input, its output, ...) of test image ``index``,
        each a PNG data URL of its own size; ``seed`` draws the noise of a task that adds some."""
        if not self.able.preview:
            raise BadRequest(f"a {self.model.name} model shows no before and after (it has no preview)", 400)
        check_seed(seed)
        self.test_image(index)   # the checks
        batch = self.data.batch(slice(index, index + 1)).to(self.model.device)
        with torch.no_grad():
            rows = self.model.preview(batch, torch.Generator().manual_seed(seed))
        names = self.preview_names()
        urls = ["data:image/png;base64," + base64.b64encode(png_bytes(png_of(planar(r[:1].float().cpu())[0]))).decode()
                for r in rows]
        return {"rows": urls, "names": [names[i] if i < len(names) else f"row {i + 1}" for i in range(len(urls))]}

    def _volume(self, seed: int | None, test: int | None) -> torch.Tensor:
        """A volume (C, D, H, W): drawn from the prior with ``seed``, or test volume ``test``; the
        latest :data:`VOLUMES_KEPT` are kept, so that moving through the slices draws nothing."""
        if len(self.model.config.image_shape) != 4:
            raise BadRequest(f"a {self.model.name} model makes images, not volumes (C, D, H, W)", 400)
        key = ("test", test) if test is not None else ("sample", 0 if seed is None else seed)
        if key not in self._volumes:
            if test is not None:
                volume = self.test_image(test)[0][0]
            else:
                if not self.able.prior:
                    raise BadRequest(f"a {self.model.name} model has no prior to sample from", 400)
                check_seed(key[1])
                volume = draw_samples(self.model, 1, key[1])[0][0]
            while len(self._volumes) >= VOLUMES_KEPT:
                self._volumes.pop(next(iter(self._volumes)))
            self._volumes[key] = volume.float().cpu()
        return self._volumes[key]

    def volume_slice(self, seed: int | None, test: int | None, axis: int, index: int | None) -> bytes:
        """One slice of a volume (:meth:`_volume`) across ``axis`` (0: depth, 1: height, 2: width)
        at ``index`` (default: the middle one), as a PNG of its own size."""
        volume = self._volume(seed, test)
        if axis not in (0, 1, 2):
            raise BadRequest(f"axis must be 0, 1 or 2 (depth, height, width), got {axis}")
        side = volume.shape[1 + axis]
        index = side // 2 if index is None else index
        if not 0 <= index < side:
            raise BadRequest(f"index must lie in 0..{side - 1} along axis {axis}, got {index}")
        return png_bytes(png_of(volume.select(1 + axis, index)))

    def volume_npy(self, seed: int | None, test: int | None) -> bytes:
        """A volume (:meth:`_volume`) as a NumPy ``.npy`` file: float32 in [0, 1], (D, H, W) for one
        channel, else (C, D, H, W)."""
        volume = self._volume(seed, test)
        buffer = io.BytesIO()
        np.save(buffer, (volume[0] if volume.shape[0] == 1 else volume).numpy().astype(np.float32), allow_pickle=False)
        return buffer.getvalue()

    def _needs(self, capability: str, what: str) -> None:
        if not getattr(self.able, capability):
            raise BadRequest(f"{what} needs a model with an {capability}; a {self.model.name} model has none", 400)


class DecodeBatcher:
    """Decode requests that arrive while the model is busy are decoded together in one call.
    Requests of different classes batch too (each keeps its own label)."""

    def __init__(self, explorer: Explorer, max_batch: int = 64):
        self.explorer, self.max_batch = explorer, max_batch
        self.batches = self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None  # kept, so that the running task is not collected

    async def decode(self, z: torch.Tensor, label: torch.Tensor | None) -> bytes:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the first request of this event loop starts its decoding task
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        future = loop.create_future()
        await self._queue.put((z, label, future))
        return await future

    async def _run(self, queue: asyncio.Queue) -> None:
        while True:
            items = [await queue.get()]
            while len(items) < self.max_batch and not queue.empty():
                items.append(queue.get_nowait())
            codes = torch.stack([z for z, _, _ in items])
            labels = None if items[0][1] is None else torch.cat([y for _, y, _ in items])
            try:
                images = await self.explorer.call(self.explorer.decode_many, codes, labels)
            except Exception as err:  # hand the error to every waiting request
                for _, _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.batches += 1
            self.requests += len(items)
            for (_, _, future), image in zip(items, images):
                if not future.done():
                    future.set_result(_png(image[None]))


TOO_LARGE = f"the request body is over the limit of {MAX_BODY_BYTES:,} bytes (uploads: {MAX_UPLOAD_BYTES // 2 ** 20} MiB)"


class BodyLimit:
    """ASGI middleware: a request whose ``Content-Length`` is over ``limit`` gets 413 before its
    body is read; one that streams more than ``limit`` bytes (chunked) gets 413 once it has."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        from fastapi.responses import JSONResponse
        from starlette.datastructures import Headers
        from starlette.exceptions import HTTPException

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = JSONResponse({"detail": TOO_LARGE}, status_code=413, headers={"connection": "close"})
        length = Headers(scope=scope).get("content-length", "").strip()
        if length.isdigit() and int(length) > self.limit:
            return await refusal(scope, receive, send)
        seen = 0
        started = False

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:   # an HTTPException, so that FastAPI's body reading passes it on
                    raise HTTPException(413, TOO_LARGE)
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except HTTPException as err:
            if started or err.status_code != 413:
                raise
            await refusal(scope, receive, send)


def create_app(run: str | Path | Run, data_dir=None, allowed_hosts: list[str] | None = None,
               work_seconds: float = WORK_SECONDS):
    """The FastAPI app serving ``run`` (a run folder or a loaded :class:`~genlab.train.Run`).

    Requests whose ``Host`` header is not in ``allowed_hosts`` are refused (400), so that a web
    page cannot reach the API through DNS rebinding; the default is this machine's names
    (:data:`LOOPBACK_HOSTS`) and ``testserver`` (the host of Starlette's test client); ``["*"]``
    allows any. Request bodies over :data:`MAX_BODY_BYTES` are refused (413) from their
    ``Content-Length`` before they are read, or once that much has streamed in. The model's work
    for one request stops after ``work_seconds`` (503), or when its client leaves."""
    try:
        from fastapi import FastAPI, File, Query, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from pydantic import BaseModel, Field
        from starlette.middleware.trustedhost import TrustedHostMiddleware
    except ImportError:
        raise GenlabError("serving needs FastAPI and uvicorn: pip install 'genlab[serve]'") from None

    run = run if isinstance(run, Run) else load_run(run)
    explorer = Explorer(run, data_dir, work_seconds)
    batcher = DecodeBatcher(explorer)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        explorer.resume()
        yield
        explorer.stop()   # work still in flight stops: nothing waits for it

    app = FastAPI(lifespan=lifespan, title=f"genlab: {run.model.name} ({run.path.name})",
                  description="Sample, encode, decode, reconstruct, interpolate, apply concept vectors, "
                              "translate (image-to-image runs) and slice volumes (3-D runs); "
                              "images as PNG, codes as JSON.",
                  docs_url=None, redoc_url=None)   # served by add_docs, without a CDN
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(
        allowed_hosts if allowed_hosts is not None else (*LOOPBACK_HOSTS, "testserver")))
    app.state.explorer, app.state.batcher = explorer, batcher

    async def work(request: Request, fn, *args):
        """``fn(*args)`` on the model's worker thread, stopped if the client of ``request`` leaves."""
        return await explorer.call(fn, *args, request=request)

    def png(content: bytes) -> Response:
        return Response(content, media_type="image/png")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, err: BadRequest):
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(GenlabError)
    async def genlab_error(request: Request, err: GenlabError):
        return JSONResponse({"detail": str(err).replace("`", "")}, status_code=400 if isinstance(err, NotSupported)
                            else 422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid value')}"}, status_code=422)

    class Decode(BaseModel):
        z: list[float]
        label: int | None = None

    class Sample(BaseModel):
        n: int = 16
        seed: int = Field(0, ge=0, lt=MAX_SEED)
        label: int | None = None
        steps: int | None = Field(None, ge=1)
        guidance: float | None = Field(None, ge=0)

    class Interpolate(BaseModel):
        a: int | list[float]
        b: int | list[float]
        steps: int = 8
        spherical: bool = True
        label: int | None = None

    class Preview(BaseModel):
        index: int = Field(0, ge=0)
        seed: int = Field(0, ge=0, lt=MAX_SEED)

    class Concept(BaseModel):
        attribute: str
        strength: float = Field(1.0, ge=-10, le=10)
        index: int | None = None
        z: list[float] | None = None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return PAGE.read_text()

    @app.get("/api/info")
    async def info():
        """The model: name, family, capabilities, shapes, classes, limits."""
        return explorer.info()

    @app.get("/api/map")
    async def latent_map():
        """2-D points of the map, their classes, and the plane that lifts a point to a code."""
        return explorer.map

    @app.get("/api/stats")
    async def stats():
        """Decode requests served and the batches they were decoded in."""
        return {"decode_requests": batcher.requests, "decode_batches": batcher.batches}

    @app.post("/api/decode", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def decode(body: Decode):
        """The image of a latent code (PNG)."""
        if not explorer.able.decoder:
            raise BadRequest(f"a {explorer.model.name} model has no decoder", 400)
        return png(await batcher.decode(explorer.code(body.z), explorer.label(body.label)))

    @app.post("/api/sample", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def sample(body: Sample, request: Request):
        """A grid of n samples from the prior (PNG); steps and guidance for diffusion models."""
        if not explorer.able.prior:
            raise BadRequest(f"a {explorer.model.name} model has no prior to sample from", 400)
        return png(await work(request, explorer.sample, body.n, body.seed, body.label, body.steps, body.guidance))

    async def read_upload(request: Request, image: UploadFile) -> torch.Tensor:
        content = await image.read(MAX_UPLOAD_BYTES + 1)
        return await work(request, explorer.upload, content)   # decoded off the event loop

    @app.post("/api/encode")
    async def encode(request: Request, image: UploadFile = File(...)):
        """The latent code of an uploaded image (JSON)."""
        return {"z": await work(request, explorer.encode, await read_upload(request, image))}

    @app.post("/api/reconstruct", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def reconstruct(request: Request, image: UploadFile = File(...)):
        """An uploaded image beside its reconstruction (PNG)."""
        return png(await work(request, explorer.reconstruct, await read_upload(request, image)))

    @app.post("/api/interpolate", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def interpolate(body: Interpolate, request: Request):
        """A strip of images along the path between two test images (indices) or codes."""
        return png(await work(request, explorer.interpolate, body.a, body.b, body.steps, body.spherical,
                              body.label))

    @app.post("/api/concept", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def concept(body: Concept, request: Request):
        """A test image (index) or code moved along a concept vector by ``strength``."""
        return png(await work(request, explorer.concept, body.attribute, body.z, body.index, body.strength))

    @app.post("/api/translate", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def translate(request: Request, image: UploadFile = File(...)):
        """An image-to-image run applied to an upload: its input image in (a noisy, small or grey
        one, or one of the source domain), the model's output out (PNG, any size the network
        takes)."""
        if not explorer.able.condition_image:
            raise BadRequest(f"a {explorer.model.name} model is not an image-to-image task", 400)
        content = await image.read(MAX_UPLOAD_BYTES + 1)
        return png(await work(request, explorer.translate, content))

    @app.get("/api/test-image", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def test_image(request: Request, index: int = Query(0, ge=0)):
        """A test image of the run's dataset, at its own size (PNG; a volume: its middle slice)."""
        return png(await work(request, explorer.test_png, index))

    @app.post("/api/preview")
    async def preview(body: Preview, request: Request):
        """Before and after: the model's preview rows of a test image (an image-to-image run: its input,
        its output and the target), each a PNG data URL at its own size, with their names (JSON)."""
        return await work(request, explorer.preview, body.index, body.seed)

    @app.get("/api/volume/slice", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def volume_slice(request: Request, seed: int = Query(0, ge=0, lt=MAX_SEED), axis: int = Query(0, ge=0, le=2),
                           index: int | None = Query(None, ge=0), test: int | None = Query(None, ge=0)):
        """A volume model: one slice (PNG) across ``axis`` (0 depth, 1 height, 2 width) at ``index``
        (default: the middle) of the volume drawn with ``seed``, or of test volume ``test``."""
        return png(await work(request, explorer.volume_slice, seed, test, axis, index))

    @app.get("/api/volume.npy", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
    async def volume_file(request: Request, seed: int = Query(0, ge=0, lt=MAX_SEED),
                          test: int | None = Query(None, ge=0)):
        """A volume model: the volume drawn with ``seed`` (or test volume ``test``) as a NumPy file,
        float32 in [0, 1], (D, H, W) for one channel."""
        content = await work(request, explorer.volume_npy, seed, test)
        name = f"test-{test}.npy" if test is not None else f"sample-{seed}.npy"
        return Response(content, media_type="application/octet-stream",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    add_endpoints = family_of(run.model).endpoints
    if add_endpoints is not None:  # what the run's family serves besides (its record's `endpoints`)
        add_endpoints(app, explorer)
    add_docs(app)
    return app


def add_docs(app) -> None:
    """The API docs at ``/docs`` (Swagger UI), its script and style served from :data:`DOCS_ASSETS`
    (the files the ``fastapi-offline`` package ships), so that they work without a network.
    Without that package, ``/docs`` is a plain page of the endpoints made from the OpenAPI schema
    (:func:`api_page`). ReDoc (``/redoc``) is not served: it loads its logo from its CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse

    spec = importlib.util.find_spec("fastapi_offline")
    assets = None if spec is None or spec.origin is None else Path(spec.origin).with_name("static")
    if assets is None or not (assets / "swagger-ui-bundle.js").is_file():
        @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
        async def plain_docs():
            return api_page(app.openapi())
        return

    from fastapi.staticfiles import StaticFiles

    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    favicon = f"{DOCS_ASSETS}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API docs",
                                   oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css", swagger_favicon_url=favicon,
                                   swagger_ui_parameters={"validatorUrl": None})   # no call to an online validator

    @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
    async def swagger_redirect():
        return get_swagger_ui_oauth2_redirect_html()


def api_page(spec: dict) -> str:
    """A plain HTML page of the endpoints in the OpenAPI ``spec``: each method and path, its
    description, its parameters and its body's fields (a page with no script and no link out)."""
    def kind(schema: dict) -> str:
        if "$ref" in schema:
            return schema["$ref"].rsplit("/", 1)[-1]
        if "anyOf" in schema:
            return " or ".join(kind(s) for s in schema["anyOf"])
        if schema.get("type") == "array":
            return f"list of {kind(schema.get('items', {}))}"
        return str(schema.get("type", "any"))

    def fields(schema: dict) -> str:
        if "$ref" in schema:
            schema = spec.get("components", {}).get("schemas", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
        required = set(schema.get("required", ()))
        return ", ".join(f"<code>{html.escape(name)}</code> ({html.escape(kind(s))}"
                         f"{', required' if name in required else ''}"
                         f"{', default ' + html.escape(repr(s['default'])) if 'default' in s else ''})"
                         for name, s in schema.get("properties", {}).items())

    rows = []
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            parameters = ", ".join(f"<code>{html.escape(p['name'])}</code> ({html.escape(kind(p.get('schema', {})))}, "
                                   f"{html.escape(p.get('in', ''))})" for p in op.get("parameters", []))
            body = ""
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                body += f"{html.escape(media)}: {fields(content.get('schema', {}))} "
            rows.append(f"<tr><td><b>{method.upper()}</b></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op.get('description') or op.get('summary', ''))}</td>"
                        f"<td>{parameters}</td><td>{body}</td></tr>")
    title = html.escape(spec.get("info", {}).get("title", "API"))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}: API docs</title>"
            "<style>body{font:14px/1.4 system-ui,sans-serif;margin:16px}td,th{border-bottom:1px solid #ddd;"
            "padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>"
            f"<h1>{title}</h1><p>{html.escape(spec.get('info', {}).get('description', ''))} The schema: "
            "<a href=\"/openapi.json\">/openapi.json</a>.</p><table><tr><th>method</th><th>path</th>"
            "<th>what it does</th><th>query parameters</th><th>body</th></tr>" + "".join(rows)
            + "</table></body></html>")


def hosts_for(host: str) -> list[str]:
    """The ``Host`` headers a server bound to ``host`` answers: any for a wildcard address (0.0.0.0,
    ::), otherwise the address itself and this machine's names."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    named = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return list(dict.fromkeys([named.lower(), *LOOPBACK_HOSTS]))


def check_address(host: str, port: int) -> None:
    """One line (a :class:`GenlabError`) if the server cannot listen on ``host``:``port``: a port
    out of range, an address this machine does not have, a port in use."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise GenlabError(f"--port must lie in 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise GenlabError(f"cannot listen on {host}: {getattr(err, 'strerror', None) or err}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as err:
            reason = "the port is in use (pick another with --port)" if err.errno == errno.EADDRINUSE \
                else (err.strerror or str(err)).lower()
            raise GenlabError(f"cannot listen on {host}:{port}: {reason}") from None


REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"connection: close\r\ncontent-length: 32\r\n\r\nthe request did not come in time")


def timed_protocol(base: type, header_seconds: float = HEADER_SECONDS, body_seconds: float = BODY_SECONDS) -> type:
    """uvicorn's HTTP protocol ``base`` with the deadlines uvicorn lacks (it times out only an idle
    connection after a response, never one that has sent nothing or half a request): a request's
    line and headers are due ``header_seconds`` after the connection opens or its last response
    ends, and its body ``body_seconds`` after its headers. A connection that misses one is closed,
    with a 408 if it had sent part of a request, so that half-sent requests (slowloris) cannot hold
    the server's connections."""

    class TimedProtocol(base):
        _timer = None
        _waiting = None   # what the timer waits for: "headers", or the request whose body is coming
        _sent = False     # whether bytes came since the timer was set for headers

        def connection_made(self, transport):
            super().connection_made(transport)
            self._watch()

        def data_received(self, data: bytes) -> None:
            self._sent = True
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def connection_lost(self, exc):
            self._set(None, None)
            super().connection_lost(exc)

        def _watch(self) -> None:
            cycle = getattr(self, "cycle", None)
            if cycle is None or cycle.response_complete:   # between requests: the next one's headers are due
                if self._waiting != "headers":
                    self._sent = False
                    self._set(header_seconds, "headers")
            elif cycle.more_body:   # a request whose body is still coming
                if self._waiting is not cycle:
                    self._set(body_seconds, cycle)
            else:   # the whole request is in: the app's turn
                self._set(None, None)

        def _set(self, seconds: float | None, waiting) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._waiting = None, waiting
            if seconds is not None:
                self._timer = asyncio.get_running_loop().call_later(seconds, self._expire, waiting)

        def _expire(self, waiting) -> None:
            self._timer = self._waiting = None
            cycle = getattr(self, "cycle", None)
            if self.transport.is_closing():
                return
            if waiting == "headers" and (cycle is None or cycle.response_complete):
                if self._sent:
                    self.transport.write(REQUEST_TIMEOUT)
            elif waiting is cycle and cycle.more_body and not cycle.response_complete:
                if not cycle.response_started:
                    self.transport.write(REQUEST_TIMEOUT)
            else:
                return
            self.transport.close()

    TimedProtocol.__name__ = TimedProtocol.__qualname__ = f"Timed{base.__name__}"
    return TimedProtocol


def make_server(app, host: str = "127.0.0.1", port: int = 8000, header_seconds: float = HEADER_SECONDS,
                body_seconds: float = BODY_SECONDS):
    """A uvicorn server of ``app`` (from :func:`create_app`): idle connections are closed after 5 s,
    half-sent requests after ``header_seconds`` or ``body_seconds`` (:func:`timed_protocol`), at
    most 64 connections are served at once, and a stop (SIGTERM, Ctrl-C) stops the model's work in
    flight at once (its clients get 503) and waits at most 5 s for the rest."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    explorer = app.state.explorer

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            explorer.stop()
            await super().shutdown(sockets)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_keep_alive=5,
                            limit_concurrency=64, timeout_graceful_shutdown=5,
                            http=timed_protocol(AutoHTTPProtocol, header_seconds, body_seconds))
    return Server(config)


def serve(run: str | Path, host: str = "127.0.0.1", port: int = 8000, data_dir=None) -> None:
    """Serve ``run`` until interrupted (``genlab serve``), with the limits of :func:`make_server`."""
    if importlib.util.find_spec("uvicorn") is None:
        raise GenlabError("serving needs FastAPI and uvicorn: pip install 'genlab[serve]'")
    check_address(host, port)   # before the run is loaded: a bad port is one line, at once
    started = time.perf_counter()
    app = create_app(run, data_dir, allowed_hosts=hosts_for(host))
    print(f"genlab: serving {app.state.explorer.model.name} from {run} at http://{host}:{port}/ "
          f"(API docs at /docs; ready in {time.perf_counter() - started:.1f} s; Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):   # Ctrl-C: a stop, as uvicorn.run takes it
        make_server(app, host, port).run()
