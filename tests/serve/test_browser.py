"""The latent explorer in a real browser (headless Chromium from Debian's packages): the page
loads offline, two clicks on the map decode two different images, and a screenshot is saved
(``GENLAB_SCREENSHOT=PATH`` also writes it there)."""
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_vae):
    uvicorn = pytest.importorskip("uvicorn")
    from genlab.serve import create_app

    port = free_port()
    started = time.perf_counter()
    config = uvicorn.Config(create_app(demo_vae), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
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
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1150"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_two_clicks_on_the_map_decode_two_different_images(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert "vae" in browser.find_element(By.ID, "title").text
    canvas = browser.find_element(By.ID, "map")
    decoded = browser.find_element(By.ID, "decoded")

    def click(dx, dy):
        before = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-decodes") or 0)
        ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).click().perform()
        wait.until(lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-decodes") or 0) > before
                   and not d.find_element(By.TAG_NAME, "body").get_attribute("data-decodes") is None)
        time.sleep(0.3)  # any decode still queued from the pointer's path lands
        wait.until(lambda d: d.execute_script("return !pending && !queued"))
        return decoded.get_attribute("src")

    first = click(-120, -100)
    second = click(130, 110)
    assert first.startswith("data:image/png;base64,") and second.startswith("data:image/png;base64,")
    assert first != second
    assert browser.find_element(By.ID, "error").text == ""
    browser.find_element(By.ID, "sample").click()
    wait.until(lambda d: (d.find_element(By.ID, "samples").get_attribute("src") or "").startswith("data:image/png"))
    browser.find_element(By.ID, "interpolate").click()
    wait.until(lambda d: (d.find_element(By.ID, "strip").get_attribute("src") or "").startswith("data:image/png"))
    wait.until(lambda d: (d.find_element(By.ID, "concept").get_attribute("src") or "").startswith("data:image/png"))
    shot = tmp_path / "explorer.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("GENLAB_SCREENSHOT"):
        Path(os.environ["GENLAB_SCREENSHOT"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, os.environ["GENLAB_SCREENSHOT"])
