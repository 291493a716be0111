"""The incident pages in a real browser: headless Chromium (Debian package) via Playwright.

Playwright's own browser downloads cannot work here; it drives the system's
/usr/bin/chromium through ``executable_path``.  The screenshot lands in
var/test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from feedguard.core.http_security import CONTENT_SECURITY_POLICY

from .conftest import make_catalog
from .support.responder import (
    FLAGS_TOKEN,
    CountingAction,
    FakeClock,
    Responder,
    alert,
    notification,
    responder_config,
    start_responder,
)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "var" / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = {
    "evil_script": "<script>alert(1)</script>",
    "evil_mention": "<!channel>",
    "evil_template": "{{ 7*7 }}",
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test` (system-deps installs it)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


def _hostile_alert() -> dict[str, Any]:
    body = alert("ISO-NE", **HOSTILE)
    body["annotations"] = {
        "summary": "ISO-NE down <img src=x onerror=alert(2)>",
        "description": "{{ 7*7 }} <!here>",
        "runbook_url": "javascript:alert(3)",
        "dashboard_url": "http://grafana.local/d/x",
    }
    return body


def _actions() -> dict[str, CountingAction]:
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate", value="100"),
        # Fails once, not retryable: the incident needs attention and offers the retry form.
        "pause_dags": CountingAction("pause_dags", fail_times=1, retryable=False),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }


def _config(tmp_path: Path) -> Any:
    return responder_config(tmp_path, catalog=make_catalog({"ISO-NE": {"datasets": ["lmp"]}}))


async def test_incident_pages_render_hostile_values_inert(tmp_path: Path, browser: Browser) -> None:
    config, actions = _config(tmp_path), _actions()
    async with start_responder(config, clock=FakeClock(), actions=actions) as r:
        body = notification([_hostile_alert()])
        body["truncatedAlerts"] = 3
        response = await r.post(body)
        assert response.status == 200
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"

        page = await browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))

        listing = await page.goto(f"{r.url}/incidents")
        assert listing is not None
        assert listing.status == 200
        assert listing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "ISO-NE" in await page.locator("table.list").inner_text()
        await page.click(f"a[href='/incidents/{incident['id']}']")
        await page.wait_for_url(f"**/incidents/{incident['id']}")

        text = await page.locator("main").inner_text()
        assert "needs attention" in text
        for value in HOSTILE.values():
            assert value in text, f"{value!r} not shown as text"
        assert "ISO-NE down <img src=x onerror=alert(2)>" in text
        assert await page.locator("main script, main img").count() == 0
        assert "49" not in await page.locator("ul.labels").inner_text()
        # The javascript: runbook link is not a link; the dashboard link is.
        assert await page.locator("a[href^='javascript']").count() == 0
        assert await page.locator("a[href='http://grafana.local/d/x']").count() == 1
        assert "truncated up to 3 alert(s)" in text
        actions_text = await page.locator("table.actions").inner_text()
        assert "throttle_api" in actions_text
        assert "100" in actions_text
        assert "failed: pause_dags refused" in actions_text
        assert "UTC" in text
        assert "just now" in text

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "incident-page.png"), full_page=True)

        # The retry form: features token typed, CSRF token from the page's cookie.
        await page.fill("input[name=token]", FLAGS_TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(re.compile(r"/incidents/[^/?]+\?retried=1$"))
        await r.settle()
        assert "Retry requested" in await page.locator("main").inner_text()
        assert actions["pause_dags"].applied, "the retried step did not run"
        assert problems == []
        await page.close()


async def _form_post(r: Responder, ident: str, **kwargs: Any) -> int:
    async with r.session.post(f"{r.url}/incidents/{ident}/retry", **kwargs) as response:
        await response.read()
        return response.status


async def test_the_retry_form_refuses_cross_site_posts(tmp_path: Path) -> None:
    config, actions = _config(tmp_path), _actions()
    async with start_responder(config, clock=FakeClock(), actions=actions) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        ident = (await r.incident("ISO-NE"))["id"]
        async with r.session.get(f"{r.url}/incidents/{ident}") as page:
            assert page.status == 200
            await page.read()
            cookie = page.cookies["feedguard_csrf"]
        assert cookie["samesite"] == "Strict"
        assert cookie["httponly"]
        token = cookie.value
        jar = {"Cookie": f"feedguard_csrf={token}"}
        good = {"token": FLAGS_TOKEN, "csrf_token": token}
        # No CSRF token, a wrong one, no cookie, another site's Origin: 403, nothing retried.
        assert await _form_post(r, ident, data={"token": FLAGS_TOKEN}, headers=jar) == 403
        wrong = {**good, "csrf_token": "x" * 43}
        assert await _form_post(r, ident, data=wrong, headers=jar) == 403
        assert await _form_post(r, ident, data=good) == 403
        evil = {**jar, "Origin": "http://evil.example"}
        assert await _form_post(r, ident, data=good, headers=evil) == 403
        assert await _form_post(r, ident, data={**good, "token": "wrong"}, headers=jar) == 401
        assert await _form_post(r, ident, json=good, headers=jar) == 400
        assert actions["pause_dags"].attempts == 1
        done = await _form_post(r, ident, data=good, headers=jar, allow_redirects=False)
        assert done == 303
        await r.settle()
        assert actions["pause_dags"].attempts == 2
