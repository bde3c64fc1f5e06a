"""A file's first schema detection can wait seconds for the AI's answer (up to its timeout,
twice): meanwhile its request holds no turn at the API's database (on SQLite 4 requests use
it at a time, flowforge_shared.deps.get_session), so other requests, and other detections,
go on. Against a real served app and a fake OpenAI server that answers slowly."""

from __future__ import annotations

import threading
import time

import httpx

from flowforge.app import create_app
from flowforge_shared.db.engine import SQLITE_REQUEST_SLOTS
from tests.conftest import ADMIN_TOKEN, make_settings, served

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DELAY = 3.0
FILES = SQLITE_REQUEST_SLOTS + 2


def test_slow_ai_detections_all_wait_at_once_and_are_kept(tmp_path, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("FLOWFORGE_OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.slow(DELAY, times=FILES)
    asked: list[float] = []
    next_answer = fake_openai._next

    def noted(received):
        asked.append(time.monotonic())
        return next_answer(received)

    fake_openai._next = noted
    app = create_app(make_settings(tmp_path))
    with served(app) as url:
        ids = []
        for number in range(FILES):
            content = f"id,amount\n{number},1.5\n{number + 1},2.5\n".encode()
            answer = httpx.post(
                f"{url}/api/files",
                files={"file": (f"f{number}.csv", content, "text/csv")},
                headers=H,
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        detected: dict[str, int] = {}

        def detect(file_id: str) -> None:
            answer = httpx.get(f"{url}/api/files/{file_id}/schema", headers=H, timeout=60)
            detected[file_id] = answer.status_code

        askers = [threading.Thread(target=detect, args=(file_id,)) for file_id in ids]
        for asker in askers:
            asker.start()
        time.sleep(1.0)  # every detection is waiting for the AI by now
        listed = httpx.get(f"{url}/api/workflows", headers=H, timeout=30)
        for asker in askers:
            asker.join()
        assert listed.status_code == 200
        assert detected == {file_id: 200 for file_id in ids}
        # All were at the AI at once: the last asked before the first was answered.
        assert len(asked) == FILES and max(asked) - min(asked) < DELAY
        # Kept: asked again, each file's schema comes from the catalog, not the AI.
        for file_id in ids:
            again = httpx.get(f"{url}/api/files/{file_id}/schema", headers=H, timeout=30)
            assert again.status_code == 200
        assert len(asked) == FILES
