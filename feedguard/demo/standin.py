"""Stand-ins the demo can switch: the providers' health endpoints, and Slack.

``GET|HEAD /health/{provider}`` answers 200, or 503 once the demo broke the
provider.  ``POST /slack/webhook`` takes what the responder posts to a Slack
incoming webhook (``{"text": ...}``) and answers ``ok`` as Slack does; the
demo prints each note as it arrives.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web


class StandIn:
    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.notes: asyncio.Queue[str] = asyncio.Queue()
        self.runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health/{provider}", self.health)
        app.router.add_post("/slack/webhook", self.slack_webhook)
        return app

    async def start(self, port: int) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.port = port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def health_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/health/{provider}"

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/webhook"

    async def health(self, request: web.Request) -> web.Response:
        if request.match_info["provider"] in self.broken:
            return web.Response(status=503, text="service unavailable (demo)")
        return web.Response(text="ok")

    async def slack_webhook(self, request: web.Request) -> web.Response:
        try:
            text = json.loads(await request.read())["text"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(text, str) or not text:
            return web.Response(status=400, text="no_text")
        await self.notes.put(text)
        return web.Response(text="ok")
