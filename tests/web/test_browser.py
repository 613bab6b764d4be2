"""The dashboard in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.api.server import ALICE, serving

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not (CHROMEDRIVER and CHROMIUM):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts() -> Path:
    """tests/artifacts/ (gitignored), made here: a fresh checkout does not have it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def classes(driver, stage: str) -> str:  # type: ignore[no-untyped-def]
    return str(
        driver.execute_script(
            "const n = document.querySelector(`#dag .node[data-stage='${arguments[0]}']`);"
            "return n ? n.getAttribute('class') : '';",
            stage,
        )
    )


def test_start_a_run_watch_it_live_and_approve_from_the_modal(
    api_workspace: Path, browser, artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, poll_frequency=0.1)
    gated = api_workspace / "pipelines.d" / "gated.yaml"
    # Stages that take a while: the page is drawn while they run, and must turn green live.
    gated.write_text(
        gated.read_text()
        .replace("run: echo built ${target}", "run: sleep 2 && echo built ${target}")
        .replace("run: echo tested", "run: sleep 1 && echo tested")
    )
    with serving(api_workspace) as server:
        browser.get(f"{server.url}/pipelines/gated?token={ALICE}")
        wait.until(lambda d: "signed in as alice" in d.find_element(By.ID, "whoami").text)
        assert "token=" not in browser.current_url  # taken out of the address bar
        field = browser.find_element(By.CSS_SELECTOR, "#trigger-form input[name=target]")
        field.clear()
        field.send_keys("browser")
        browser.find_element(By.ID, "trigger").click()
        wait.until(lambda d: "/runs/" in d.current_url)
        browser.execute_script("window.notReloaded = true;")  # gone if the page reloads
        first = {s: classes(browser, s) for s in ("build", "test", "lint", "deploy")}
        assert not any("st-succeeded" in c for c in first.values()), first  # drawn before they finish
        wait.until(lambda d: "st-running" in classes(d, "build"))

        for stage in ("build", "test", "lint"):
            wait.until(lambda d, s=stage: "st-succeeded" in classes(d, s))
        wait.until(lambda d: "st-waiting_approval" in classes(d, "deploy-gate"))
        assert "st-succeeded" not in classes(browser, "deploy")
        button = wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "#approvals-box button[data-approval]"))
        )
        button.click()
        modal = wait.until(ec.visibility_of_element_located((By.ID, "approval-modal")))
        modal.find_element(By.NAME, "comment").send_keys("ship it")
        modal.find_element(By.CSS_SELECTOR, "button[data-action=approve]").click()

        wait.until(lambda d: "st-succeeded" in classes(d, "deploy"))
        wait.until(lambda d: d.find_element(By.ID, "run-status").text == "succeeded")
        assert browser.execute_script("return window.notReloaded === true;")
        shot = artifacts / "dashboard-run.png"
        assert browser.save_screenshot(str(shot))
        run_id = browser.current_url.rsplit("/", 1)[1]

        with server.client() as c:
            record = c.get(f"/api/pipeline-runs/{run_id}").json()
            audit = c.get(f"/api/approvals/{record['approvals'][0]['id']}").json()["audit"]
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["status"] == "succeeded" and record["variables"] == {"target": "browser"}
    assert record["started_by"] == "alice"
    assert [(e["kind"], e["user"], e["comment"]) for e in audit if e["kind"] == "approved"] == [
        ("approved", "alice", "ship it")
    ]


def test_the_editor_shows_errors_at_their_line(api_workspace: Path, browser, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    before = (api_workspace / "pipelines.d" / "gated.yaml").read_text()
    with serving(api_workspace) as server:
        browser.get(f"{server.url}/pipelines/gated?token={ALICE}")
        browser.execute_script(
            "document.getElementById('yaml').value = arguments[0];"
            "document.getElementById('yaml').dispatchEvent(new Event('input'));",
            before.replace("run: echo tested", "run: echo tested\n    timeout: 30 minutes"),
        )
        browser.find_element(By.ID, "save").click()
        issue = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#issues li"))[0]
        assert 'stages[1].timeout: "30 minutes" is not a duration' in issue.text
        marked = browser.find_element(By.CSS_SELECTOR, "#gutter .bad")
        assert marked.text.strip() == issue.get_attribute("data-line") == "8"
        shot = artifacts / "dashboard-editor.png"
        assert browser.save_screenshot(str(shot))
        # A file that never validated: its page opens with the errors marked; saving a fix works.
        broken = api_workspace / "pipelines.d" / "broken.yaml"
        broken.write_text("name: broken\nstages:\n  - name: build\n    run: make\n    timeout: 30 minutes\n")
        browser.get(f"{server.url}/pipelines/broken")
        marked = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gutter .bad"))
        assert [m.text.strip() for m in marked] == ["5"]
        browser.execute_script(
            "document.getElementById('yaml').value = arguments[0];",
            broken.read_text().replace("30 minutes", "30m"),
        )
        browser.find_element(By.ID, "save").click()
        wait.until(lambda d: d.find_element(By.ID, "editor-status").text == "saved: version 1")
    assert shot.stat().st_size > 1000
    assert (api_workspace / "pipelines.d" / "gated.yaml").read_text() == before  # nothing saved
    assert "timeout: 30m\n" in (api_workspace / "pipelines.d" / "broken.yaml").read_text()
