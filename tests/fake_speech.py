"""A stand-in speech service for fault tests: it answers each audio chunk with an empty partial, then at the
stream's end either never answers (a slow whisper queue, so a worker can be killed mid-transcription) or answers
with one text. Voice requests get an error reply, so the IVR falls back to its recorded prompts."""

from __future__ import annotations

import asyncio
import json
import threading

import websockets


class FakeSpeech:
    def __init__(self, text: str = "请转告法官给我回电话"):
        self.text = text
        self.answer = False  # False: hold every stream open without a word
        self.streams_ended = 0  # streams whose audio ended ({"eof": 1}) — a transcription waiting for its text
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, name="fake-speech", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> FakeSpeech:
        self._thread.start()
        assert self._ready.wait(5), "fake speech service did not start"
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = self._loop.create_future()
        async with websockets.serve(self._handle, "127.0.0.1", 0, max_size=1 << 22) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws) -> None:
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    await ws.send('{"partial": ""}')  # one reply per audio message, as the real service
                    continue
                data = json.loads(msg)
                if "tts" in data:
                    await ws.send("no voice here")
                    return
                if data.get("eof"):
                    self.streams_ended += 1
                    while not self.answer:
                        await asyncio.sleep(0.1)
                    await ws.send(json.dumps({"text": self.text}))
                    return
        except websockets.ConnectionClosed:
            pass
