"""The local web app in a real headless browser (Debian's chromium and chromedriver)."""

from __future__ import annotations

import io
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("needs chromium and chromedriver (apt: chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from exposure_slot.app import build_app, launch  # noqa: E402
from exposure_slot.samples import sample_path  # noqa: E402

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)  # fmt: skip


@pytest.fixture(scope="module")
def url(corrector, tmp_path_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(corrector, tmp_path_factory.mktemp("app"))
    launch(app, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture
def browser(url):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    service = webdriver.chrome.service.Service(shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.get(url)
    yield driver
    driver.quit()


def upload(driver, *paths: Path, strength: float | None = None) -> WebDriverWait:
    wait = WebDriverWait(driver, 60)
    field = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photos input[type=file]"))
    field.send_keys("\n".join(str(p) for p in paths))
    wait.until(lambda d: all(p.stem in d.find_element(By.ID, "photos").text for p in paths))
    if strength is not None:
        number = driver.find_element(By.CSS_SELECTOR, "#strength input[type=number]")
        number.clear()
        number.send_keys(str(strength), "\n")
        time.sleep(0.5)
    driver.find_element(By.ID, "correct").click()
    return wait


def downloaded(driver, wait) -> dict[str, Image.Image]:
    links = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#downloads a"))
    files = {}
    for link in links:
        href = link.get_attribute("href")
        with urllib.request.urlopen(href, timeout=30) as response:  # 127.0.0.1 only
            files[href.rsplit("/", 1)[-1]] = Image.open(io.BytesIO(response.read()))
    return files


def test_a_photo_is_corrected_and_downloaded_with_its_metadata(browser):
    wait = upload(browser, sample_path())
    files = downloaded(browser, wait)
    assert list(files) == ["dim_bar_corrected.jpg"]
    result, original = files["dim_bar_corrected.jpg"], Image.open(sample_path())
    assert result.size == original.size
    assert np.asarray(result).mean() > np.asarray(original).mean() + 5  # brighter
    assert result.getexif()[0x0110] == original.getexif()[0x0110]  # camera model kept
    assert "Corrected 1 of 1" in browser.find_element(By.ID, "status").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#before-after img")) == 2


def test_strength_zero_gives_the_photo_back(browser):
    files = downloaded(browser, upload(browser, sample_path(), strength=0))
    result = np.asarray(files["dim_bar_corrected.jpg"], dtype=float)
    assert abs(result.mean() - np.asarray(Image.open(sample_path())).mean()) < 1.5  # JPEG again


def test_a_broken_file_shows_the_library_error_in_the_page(browser, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a photo")
    upload(browser, broken).until(
        lambda d: "broken.jpg:" in d.find_element(By.TAG_NAME, "body").text
    )
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "cannot read" in text  # the library's ImageReadError, shown as Gradio's error


def test_good_and_broken_files_together(browser, tmp_path):
    broken = tmp_path / "empty.png"
    broken.write_bytes(b"")
    wait = upload(browser, sample_path(), broken)
    assert list(downloaded(browser, wait)) == ["dim_bar_corrected.jpg"]
    status = browser.find_element(By.ID, "status").text
    assert "Corrected 1 of 2" in status and "not corrected empty.png" in status
