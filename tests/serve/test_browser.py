"""The explorer page in a real browser (headless Chromium from Debian's packages), one test per kind
of page the capabilities choose: a map of codes for a VAE, a GAN and a diffusion model, before and
after for an image-to-image run, slices for a volume model; and the API docs, offline. Each test
saves a screenshot; ``GENLAB_SCREENSHOTS=docs/images`` also writes them there (``serve-*.png``)."""
import io
import os
import re
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def serve():
    """serve(run) -> the URL of a server of ``run`` (one per run, stopped at the module's end)."""
    uvicorn = pytest.importorskip("uvicorn")
    from genlab.serve import create_app

    servers = {}

    def start(run):
        if run in servers:
            return servers[run][0]
        port = free_port()
        started = time.perf_counter()
        server = uvicorn.Server(uvicorn.Config(create_app(run), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/api/info", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        assert time.perf_counter() - started < 10   # "starts in a few seconds"
        servers[run] = (url, server, thread)
        return url

    yield start
    for _, server, thread in servers.values():
        server.should_exit = True
    for _, _, thread in servers.values():
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, condition, seconds=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(lambda d: condition())


def open_page(browser, url, kind):
    """The page at ``url``, once it has started; it must be the page of ``kind`` and show no broken image."""
    browser.get(url + "/")
    wait_for(browser, lambda: browser.execute_script("return document.body.dataset.ready") == "true")
    assert browser.execute_script("return document.body.dataset.page") == kind
    # the pictures load after the page starts (slowly on a busy machine): wait until each has
    # loaded or failed, then none may have failed
    wait_for(browser, lambda: browser.execute_script(
        "return [...document.images].every((i) => i.offsetParent === null || i.complete)"), seconds=60)
    assert broken_images(browser) == []
    assert error(browser) == ""
    return browser


def broken_images(browser) -> list[str]:
    """The images on screen that did not load (none may be shown before it has a picture)."""
    return browser.execute_script("""
        return [...document.images].filter((i) => i.offsetParent !== null && !(i.complete && i.naturalWidth > 0))
                                   .map((i) => i.id || i.alt || i.src.slice(0, 60));""")


def error(browser) -> str:
    return browser.execute_script("return document.getElementById('error').textContent")


def loaded(browser, selector) -> list[dict]:
    """Each image matching ``selector``: its natural and rendered widths, once all have loaded."""
    script = f"""return [...document.querySelectorAll({selector!r})].map((i) => ({{
        ok: i.complete && i.naturalWidth > 0, natural: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width,
        src: i.getAttribute('src') || ''}}));"""
    wait_for(browser, lambda: (images := browser.execute_script(script)) and all(i["ok"] for i in images))
    return browser.execute_script(script)


def hidden(browser, element_id) -> bool:
    return browser.execute_script(f"return document.getElementById({element_id!r}).offsetParent === null")


def counter(browser, name) -> int:
    return int(browser.execute_script(f"return document.body.dataset.{name} || '0'"))


def screenshot(browser, name, tmp_path):
    shot = tmp_path / name
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("GENLAB_SCREENSHOTS"):
        folder = Path(os.environ["GENLAB_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / name)


def png_file(tmp_path, shape, seed=0) -> str:
    pixels = (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)
    path = tmp_path / f"upload-{seed}.png"
    Image.fromarray(pixels).save(path)
    return str(path)


def map_is_drawn(browser) -> int:
    """The number of painted pixels of the map's canvas."""
    return browser.execute_script("""
        const c = document.getElementById('map'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;""")


def legend(browser) -> list[str]:
    return browser.execute_script("return [...document.querySelectorAll('#legend .legend-item')].map((e) => e.textContent)")


def hover_decodes(browser, dx, dy) -> str:
    """Moves the pointer over the map to (dx, dy) from its centre; the decoded image's source."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    before = counter(browser, "decodes")
    ActionChains(browser).move_to_element_with_offset(browser.find_element(By.ID, "map"), dx, dy).perform()
    wait_for(browser, lambda: counter(browser, "decodes") > before)
    wait_for(browser, lambda: browser.execute_script("return !pending && !queued"))
    image = loaded(browser, "#decoded")[0]
    assert image["shown"] >= 192 and image["src"].startswith("data:image/png;base64,")
    return image["src"]


def click(browser, element_id):
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, element_id).click()


def set_ends_and_interpolate(browser):
    """Sets end A by a button and end B by the map's mode switch, and draws the path between them."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    hover_decodes(browser, -100, -80)
    click(browser, "set-a")
    browser.find_element(By.CSS_SELECTOR, "input[name=click-mode][value=b]").click()
    ActionChains(browser).move_to_element_with_offset(browser.find_element(By.ID, "map"), 110, 90).click().perform()
    wait_for(browser, lambda: browser.find_element(By.ID, "end-b").text != "–")
    assert browser.find_element(By.ID, "end-a").text != "–"
    browser.find_element(By.CSS_SELECTOR, "input[name=click-mode][value=decode]").click()
    click(browser, "interpolate")
    strip = loaded(browser, "#strip")[0]
    assert strip["natural"] > 4 * 8 and error(browser) == ""


def test_the_vae_page_maps_decodes_and_takes_an_upload(serve, browser, tmp_path, demo_vae):
    from selenium.webdriver.common.by import By

    open_page(browser, serve(demo_vae), "latent")
    assert "vae" in browser.find_element(By.ID, "title").text
    assert hidden(browser, "translate-page") and hidden(browser, "volume-page") and not hidden(browser, "upload-panel")
    assert map_is_drawn(browser) > 1000
    assert legend(browser) == [str(k) for k in range(10)]   # the digits' classes, each with its colour
    first, second = hover_decodes(browser, -120, -100), hover_decodes(browser, 130, 110)
    assert first != second
    set_ends_and_interpolate(browser)
    loaded(browser, "#concept")
    click(browser, "sample")
    loaded(browser, "#samples")
    browser.find_element(By.ID, "upload-file").send_keys(png_file(tmp_path, (8, 8)))
    wait_for(browser, lambda: counter(browser, "uploads") == 1)
    pair = loaded(browser, "#upload-results img")[0]
    assert pair["natural"] > 1.8 * pair["height"] and "its code: [" in browser.find_element(By.ID, "upload-code").text
    assert broken_images(browser) == [] and error(browser) == ""
    screenshot(browser, "serve-explorer.png", tmp_path)


def test_the_gan_page_maps_prior_draws_of_each_class(serve, browser, tmp_path, small_runs):
    from selenium.webdriver.common.by import By

    open_page(browser, serve(small_runs / "cgan"), "latent")
    assert "draws from the prior" in browser.find_element(By.ID, "map-source").text
    assert map_is_drawn(browser) > 1000 and legend(browser) == [str(k) for k in range(10)]
    assert hidden(browser, "upload-panel") and hidden(browser, "concept-panel")   # no encoder: nothing to upload
    first = hover_decodes(browser, 0, 0)
    browser.find_element(By.CSS_SELECTOR, "#label option[value='7']").click()   # the same point, another class
    wait_for(browser, lambda: loaded(browser, "#decoded")[0]["src"] != first)
    set_ends_and_interpolate(browser)
    click(browser, "sample")
    loaded(browser, "#samples")
    assert broken_images(browser) == [] and error(browser) == ""
    screenshot(browser, "serve-gan.png", tmp_path)


def test_the_diffusion_page_decodes_noise_and_samples(serve, browser, tmp_path, diffusion_runs):
    from selenium.webdriver.common.by import By

    open_page(browser, serve(diffusion_runs / "short"), "latent")
    assert map_is_drawn(browser) > 1000 and "one colour" in browser.find_element(By.ID, "legend").text
    assert not hidden(browser, "steps-box") and hidden(browser, "upload-panel")
    assert hover_decodes(browser, -80, 60) != hover_decodes(browser, 90, -70)
    set_ends_and_interpolate(browser)
    click(browser, "sample")
    loaded(browser, "#samples")
    assert broken_images(browser) == [] and error(browser) == ""
    screenshot(browser, "serve-diffusion.png", tmp_path)


def test_the_image_to_image_page_shows_before_and_after(serve, browser, tmp_path, small_runs):
    from selenium.webdriver.common.by import By

    open_page(browser, serve(small_runs / "denoise"), "image-to-image")
    assert hidden(browser, "latent-page") and hidden(browser, "sample-panel") and not hidden(browser, "upload-panel")
    thumbs = loaded(browser, "#thumbs img")
    assert len(thumbs) == 12 and all(t["natural"] == 8 for t in thumbs)
    browser.find_elements(By.CSS_SELECTOR, "#thumbs img")[3].click()
    wait_for(browser, lambda: counter(browser, "previews") == 1)
    rows = loaded(browser, "#preview-rows img")
    assert len(rows) == 3 and all(r["natural"] == 8 and r["shown"] >= 192 for r in rows)   # 8x8, shown crisp at 192+
    captions = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#preview-rows figcaption")]
    assert captions == ["before: input", "after: output", "target"]
    assert browser.execute_script("return getComputedStyle(document.querySelector('#preview-rows img')).imageRendering") \
        == "pixelated"
    browser.find_element(By.ID, "upload-file").send_keys(png_file(tmp_path, (16, 12), seed=1))
    wait_for(browser, lambda: counter(browser, "uploads") == 1)
    before, after = loaded(browser, "#upload-results img")
    assert before["natural"] == after["natural"] == 12 and before["shown"] >= 192 and after["shown"] >= 192
    assert broken_images(browser) == [] and error(browser) == ""
    screenshot(browser, "serve-image-to-image.png", tmp_path)


def test_the_volume_page_shows_slices_and_a_download(serve, browser, tmp_path, volume_run):
    from selenium.webdriver.common.by import By

    open_page(browser, serve(volume_run), "volume")
    assert hidden(browser, "latent-page") and hidden(browser, "translate-page")
    for box in ("#volume-sample", "#volume-test"):   # a drawn volume beside a test volume: three slices each
        slices = loaded(browser, f"{box} img")
        assert len(slices) == 3 and all(s["natural"] == 16 and s["shown"] >= 192 for s in slices)
    slider = browser.find_elements(By.CSS_SELECTOR, "#volume-sample input[type=range]")[0]
    browser.execute_script("arguments[0].value = 2; arguments[0].dispatchEvent(new Event('input'))", slider)
    moved = loaded(browser, "#volume-sample img")[0]
    assert "index=2" in moved["src"] and moved["src"] != slices[0]["src"]
    link = browser.find_element(By.CSS_SELECTOR, "#volume-sample a.download").get_attribute("href")
    assert link.endswith("/api/volume.npy?seed=0")
    volume = np.load(io.BytesIO(urllib.request.urlopen(link, timeout=10).read()))
    assert volume.shape == (16, 16, 16)
    click(browser, "sample")
    loaded(browser, "#samples")
    rows = browser.find_elements(By.CSS_SELECTOR, "#api-list tr")
    assert any("/api/volume/slice" in r.text and "not for this model" not in r.text for r in rows)
    assert any("/api/encode" in r.text and "not for this model" in r.text for r in rows)
    assert broken_images(browser) == [] and error(browser) == ""
    screenshot(browser, "serve-volume.png", tmp_path)


def test_the_api_docs_work_offline(serve, browser, tmp_path, small_runs):
    """/docs renders, and every resource it loads comes from this server."""
    from selenium.webdriver.common.by import By

    url = serve(small_runs / "denoise")
    text = urllib.request.urlopen(url + "/docs", timeout=10).read().decode()
    assert re.findall(r"https?://[^\s\"'<>]+", text) == []
    browser.get(url + "/docs")
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) > 3)   # every endpoint
    assert "/api/translate" in browser.find_element(By.ID, "swagger-ui").text
    resources = browser.execute_script("return performance.getEntriesByType('resource').map((r) => r.name)")
    assert resources and all(r.startswith(url + "/") for r in resources), resources
    screenshot(browser, "serve-docs.png", tmp_path)
