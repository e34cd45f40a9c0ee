"""The explorer notebook in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven through Selenium.

For ``tests/explore/test_browser.py`` (the notebook runs and answers in a browser) and
``benchmarks/bench_explore.py --browser`` (how long a person waits). ``jupyterlab`` serves a working copy of the
explorer notebook; ``chromium`` starts the browser; ``run_all`` opens the notebook and runs every cell;
``change`` sets one control *inside the page* (a select, a text field, a slider's readout, a checkbox, as a
person's click or typing does) and measures, with the page's own clock, the time from that change to the new
picture's ``src`` (the kernel computed and sent it) and to the frame after it was decoded (painted).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``requirements-dev.txt``);
without them ``BrowserMissing`` says what to install.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnlib import config

NOTEBOOK = config.REPO_ROOT / "notebooks" / "explore.ipynb"
INSTALL = (
    "apt-get install -y chromium chromium-driver (Debian's browser and its matching driver) and "
    "pip install selenium==4.51.0"
)


class BrowserMissing(RuntimeError):
    """Chromium, its driver or selenium is missing; the message says what to install."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyterlab(folder: Path, env: dict | None = None, start_timeout: float = 60) -> Iterator[tuple[str, str, Path]]:
    """A JupyterLab serving ``folder`` with a working copy of the explorer notebook: yields (URL, token, folder).

    Args:
        folder: an empty, writable folder (its own runtime, config and workspace folders go there too).
        env: environment of the server and its kernels (default: this process's, with the repository on
            PYTHONPATH).
        start_timeout: seconds to wait for the server to answer.

    Raises:
        RuntimeError: if the server does not answer in time (the message ends with its log).
    """
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    # no "get notified about Jupyter news?" toast over the notebook (it covered the explorer in screenshots)
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **(env if env is not None else os.environ),
        "PYTHONPATH": os.pathsep.join([str(config.REPO_ROOT), (env or os.environ).get("PYTHONPATH", "")]),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
    }
    log_path = folder / "jupyterlab.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={work}",
                f"--LabApp.workspaces_dir={folder / 'workspaces'}",
                f"--LabApp.user_settings_dir={folder / 'settings'}",
                "--allow-root",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"JupyterLab did not start: {log_path.read_text()[-2000:]}") from None
                    time.sleep(0.5)
            yield url, token, work
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def chromium():
    """A headless Chromium (1500 x 1400) driven by Selenium; ``BrowserMissing`` saying what to install otherwise."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissing(f"The browser needs selenium ({exc}). Install: {INSTALL}.") from exc
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise BrowserMissing(f"No Chromium found (chromium: {browser}, chromedriver: {driver}). Install: {INSTALL}.")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1400",
    ):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(options=options, service=Service(executable_path=driver))
    except Exception as exc:  # noqa: BLE001 - any start failure gets the same guidance
        raise BrowserMissing(f"Chromium could not be started ({exc}). Install: {INSTALL}.") from exc


def _accept_kernel(driver, wait) -> None:
    """Wait until the notebook's kernel is idle. JupyterLab may first ask which kernel to start (a "Select
    Kernel" dialog, seen when the page loads faster than the kernel session attaches): accept its default,
    the notebook's own kernel (python3), as a user would."""
    from selenium.webdriver.common.by import By

    def ready(d) -> bool:
        for button in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-button.jp-mod-accept"):
            if button.is_displayed():
                button.click()
                return False
        return any("Idle" in e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-StatusBar-Widget"))

    wait.until(ready)


def menu(driver, wait, menu_name: str, command: str) -> None:
    """Click ``menu_name`` in the menu bar, then the item of ``command`` (e.g. "Run", "runmenu:run-all")."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{menu_name}']]").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"li.lm-Menu-item[data-command='{command}']"))).click()


def run_all(driver, url: str, token: str, timeout: float):
    """Open the explorer notebook, run every cell, wait until each has run; returns the picture's element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    driver.get(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}&reset")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
    _accept_kernel(driver, wait)
    menu(driver, wait, "Run", "runmenu:run-all")
    picture = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "img.cnnlib-picture")))
    wait.until(lambda d: picture.get_attribute("src"))
    code_cells = len(driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell"))

    def every_cell_ran(d) -> bool:
        prompts = d.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputArea-prompt")
        return sum(bool(re.fullmatch(r"\[\d+\]:", p.text.strip())) for p in prompts) == code_cells

    wait.until(every_cell_ran)
    return picture


# Runs in the page: set one control as a person does, then time (page clock, ms) until the picture's src changes
# and until the frame after the new picture was decoded. Arguments: control's css class, how to set it, the value.
_CHANGE = """
const [css, how, value, limit_ms, done] = arguments;
const img = document.querySelector('img.cnnlib-picture');
const root = document.querySelector('.cnnlib-' + css);
if (!img || !root) { done({error: 'no picture or no control .cnnlib-' + css}); return; }
const before = img.src;
let t0 = 0;
const observer = new MutationObserver(() => {
  if (img.src === before) return;
  observer.disconnect();
  const changed = performance.now() - t0;
  img.decode().catch(() => null).then(() => requestAnimationFrame(() => requestAnimationFrame(
    () => done({changed_ms: changed, painted_ms: performance.now() - t0}))));
});
observer.observe(img, {attributes: true, attributeFilter: ['src']});
const fire = (element, type) => element.dispatchEvent(new Event(type, {bubbles: true}));
const unchanged = () => { observer.disconnect(); done({unchanged: true}); };
t0 = performance.now();
if (how === 'select') {
  const select = root.querySelector('select');
  const text = o => o.textContent.replace(/\u00a0/g, ' ').trim();  // ipywidgets writes non-breaking spaces
  const index = [...select.options].findIndex(o => text(o) === String(value));
  if (index < 0) { observer.disconnect(); done({error: 'no option ' + value}); return; }
  if (select.selectedIndex === index) { unchanged(); return; }
  select.selectedIndex = index; fire(select, 'change');
} else if (how === 'text') {
  const input = root.querySelector('input');
  if (input.value === String(value)) { unchanged(); return; }
  input.value = String(value); fire(input, 'change');
} else if (how === 'slider') {
  const readout = root.querySelector('.widget-readout');
  if (readout.textContent.trim() === String(value)) { unchanged(); return; }
  if (readout.getAttribute('contenteditable') !== 'true') {
    observer.disconnect(); done({error: css + ' is disabled'}); return;
  }
  readout.textContent = String(value);
  const enter = new KeyboardEvent('keydown', {key: 'Enter', keyCode: 13, which: 13, bubbles: true});
  Object.defineProperty(enter, 'keyCode', {get: () => 13});
  readout.dispatchEvent(enter);
} else if (how === 'checkbox') {
  const box = root.querySelector('input');
  if (box.checked === Boolean(value)) { unchanged(); return; }
  box.click();
}
setTimeout(() => { observer.disconnect(); done({error: 'no new picture within ' + limit_ms + ' ms'}); }, limit_ms);
"""


def change(driver, css: str, how: str, value, limit: float = 120) -> dict:
    """Set the control ``.cnnlib-<css>`` in the page (``how``: "select" by option text, "text", "slider" through
    its readout, "checkbox") and wait up to ``limit`` seconds for the new picture: {"changed_ms": until the
    picture's src changed, "painted_ms": until the frame after it was decoded}; {"unchanged": True} when the control
    already had that value; {"error": ...} when the control is missing or disabled, or no picture came in time."""
    driver.set_script_timeout(limit + 10)
    return driver.execute_async_script(_CHANGE, css, how, value, int(limit * 1000))


def options(driver, css: str) -> list[str]:
    """The option texts of the select of control ``.cnnlib-<css>``."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f".cnnlib-{css} select option")
    return [o.get_attribute("textContent").replace("\u00a0", " ").strip() for o in found]


def slider_max(driver, css: str) -> int:
    """The largest value of the slider ``.cnnlib-<css>``."""
    from selenium.webdriver.common.by import By

    handle = driver.find_element(By.CSS_SELECTOR, f".cnnlib-{css} .noUi-handle")
    return int(float(handle.get_attribute("aria-valuemax")))


def interactions(driver, steps: int = 5) -> dict[str, tuple[list, list]]:
    """{interaction: (setup changes, timed changes)}, each change (control, how, value), read off the page: the
    same interactions as ``benchmarks/bench_explore.py`` (distinct channels, neuron positions and images)."""
    targets = [t for t in options(driver, "target") if t != "predicted class"]
    h, w = slider_max(driver, "row") + 1, slider_max(driver, "col") + 1
    positions = [(i % h, (3 * i) % w) for i in range(1, steps + 1)]
    return {
        "Grad-CAM: change target class": (
            [("method", "select", "Grad-CAM"), ("target", "select", targets[0])],
            [("target", "select", targets[i % len(targets)]) for i in range(1, steps + 1)],
        ),
        "feature map + neuron: change channel": (
            [("method", "select", "feature map + neuron"), ("argmax", "checkbox", True), ("channel", "text", 0)],
            [("channel", "text", c) for c in range(1, steps + 1)],
        ),
        "guided backprop: move the neuron": (
            [("method", "select", "guided backprop"), ("argmax", "checkbox", False)],
            [("row", "slider", r) if i % 2 else ("col", "slider", c) for i, (r, c) in enumerate(positions)],
        ),
        "Grad-CAM: change image": (
            [("method", "select", "Grad-CAM"), ("target", "select", "predicted class"), ("index", "slider", 0)],
            [("index", "slider", i) for i in range(1, steps + 1)],
        ),
    }


def time_interactions(driver) -> dict:
    """{interaction: median changed_ms and painted_ms} on the model now shown (see ``interactions``)."""
    rows = {}
    for label, (setup, steps) in interactions(driver).items():
        for css, how, value in setup:  # untimed; a change that leaves the picture as it was just waits 10 s
            change(driver, css, how, value, limit=10)
        times = [change(driver, css, how, value) for css, how, value in steps]
        errors = [t["error"] for t in times if "error" in t]
        if errors:
            raise RuntimeError(f"{label}: {errors[0]}")
        rows[label] = {
            "changed_ms": round(statistics.median(t["changed_ms"] for t in times)),
            "painted_ms": round(statistics.median(t["painted_ms"] for t in times)),
            "n": len(times),
        }
    return rows


def latencies(timeout: float = 600) -> dict:
    """The explorer's interactions timed in a real browser on the best custom network and on VGG19 (the project's
    models, from this checkout's cache): per interaction, the median ms to the new ``src`` and to the painted
    frame, with the Python side's figures of the same session for comparison (the kernel's ``Frame.seconds``)."""
    with tempfile.TemporaryDirectory(prefix="explorer-browser-") as tmp, jupyterlab(Path(tmp)) as (url, token, _):
        driver = chromium()
        try:
            run_all(driver, url, token, timeout)
            opened = driver.execute_script(
                "return document.querySelector('.cnnlib-model select').selectedOptions[0].text"
            )
            result = {"custom": {"model": opened.strip(), "interactions": time_interactions(driver)}}
            load = change(driver, "model", "select", "vgg19", limit=timeout)
            if "error" in load:
                raise RuntimeError(f"loading VGG19: {load['error']}")
            result["vgg19"] = {
                "model": "vgg19",
                "load_and_first_picture_ms": round(load["painted_ms"]),
                "interactions": time_interactions(driver),
            }
        finally:
            driver.quit()
    result["note"] = (
        "milliseconds in headless Chromium from setting a control in the page to the picture's new src (changed) and "
        "to the frame after it was decoded (painted), median; JupyterLab and the kernel on the same 2 cores"
    )
    return result


def screenshot(path: Path, timeout: float = 600) -> Path:
    """A JPEG of the explorer as a person sees it after running the notebook (the project's models, from this
    checkout's cache), showing one neuron's receptive field and guided backpropagation: the docs' picture.
    ``python -m cnnlib.explore.browser docs/explorer.jpg`` makes it."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="explorer-shot-") as tmp, jupyterlab(Path(tmp)) as (url, token, _):
        driver = chromium()
        try:
            run_all(driver, url, token, timeout)
            for css, how, value in (("method", "select", "guided backprop"), ("layer", "select", "conv2")):
                change(driver, css, how, value, limit=60)
            panel = driver.find_element(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")
            driver.execute_script("arguments[0].scrollIntoView()", panel)
            time.sleep(1)
            png = Path(tmp) / "explorer.png"
            panel.screenshot(str(png))
            Image.open(png).convert("RGB").save(path, quality=88)
        finally:
            driver.quit()
    return path


if __name__ == "__main__":
    print(screenshot(Path(sys.argv[1]) if len(sys.argv) > 1 else config.REPO_ROOT / "docs" / "explorer.jpg"))
