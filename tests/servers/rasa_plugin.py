"""The Rasa plug-in (``integrations/rasa``) built for the Rasa venv, a trained bot, ``rasa run``.

The plug-in is installed with pip into a directory of this session (``--target``), and
Rasa subprocesses get it on ``PYTHONPATH``: the shared Rasa venv is never changed, so test
sessions of different checkouts cannot swap each other's plug-in. The bot is trained once
per set of bot files: the model is cached in ``~/.cache/eventstore-tests/rasa-models``
under a hash of the bot's files and the Rasa venv, so reruns skip the 10 to 25 s training.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port
from tests.servers.rasa import RASA_VENV, REPO, rasa_env

PLUGIN_DIR = REPO / "integrations" / "rasa"
MODEL_CACHE = Path(
    os.environ.get(
        "EVENTSTORE_TEST_RASA_MODELS", Path.home() / ".cache/eventstore-tests/rasa-models"
    )
)


def copy_plugin(dest: Path) -> Path:
    """A copy of integrations/rasa (pip builds a local project in place: build a copy)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(PLUGIN_DIR, dest, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    return dest


def pip_install_plugin(
    rasa_python: Path, target: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """``pip install --no-deps`` of (a copy of) the plug-in into ``target`` with Rasa's pip."""
    source = copy_plugin(target.parent / f"{target.name}-src")
    return subprocess.run(
        [str(rasa_python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), *options, str(source)],
        capture_output=True, text=True, timeout=300, env=rasa_env(),
    )  # fmt: skip


@pytest.fixture(scope="session")
def rasa_plugin_site(rasa_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed plug-in (put it on the Rasa process's PYTHONPATH)."""
    target = tmp_path_factory.mktemp("rasa-plugin-site")
    proc = pip_install_plugin(rasa_python, target)
    if proc.returncode != 0:
        pytest.fail(f"installing integrations/rasa into the Rasa venv failed:\n{proc.stderr}")
    return target


def plugin_env(site: Path) -> dict[str, str]:
    """Environment of a Rasa subprocess that can import ``eventstore_rasa``."""
    return {**rasa_env(), "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"}


def _bot_hash(bot: Path) -> str:
    digest = hashlib.sha256(str(RASA_VENV.resolve()).encode())
    for path in sorted(p for p in bot.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(bot)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def rasa_model(
    rasa_python: Path, rasa_bot_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The trained ``../shared/rasa/bot`` (a model .tar.gz), from the cache or trained now."""
    cached = MODEL_CACHE / f"bot-{_bot_hash(rasa_bot_dir)}.tar.gz"
    if cached.exists():
        return cached
    work = tmp_path_factory.mktemp("rasa-train") / "bot"
    shutil.copytree(rasa_bot_dir, work)
    proc = subprocess.run(
        [str(rasa_python), "-m", "rasa", "train", "--fixed-model-name", "bot"],
        cwd=work, capture_output=True, text=True, timeout=600, env=rasa_env(),
    )  # fmt: skip
    model = work / "models" / "bot.tar.gz"
    if proc.returncode != 0 or not model.exists():
        pytest.fail(
            f"rasa train failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    shutil.copyfile(model, partial)
    partial.replace(cached)  # atomic: a concurrent session sees all of it or nothing
    return cached


def get_tracker(base_url: str, sender: str) -> dict[str, Any]:
    """``GET /conversations/{id}/tracker?include_events=ALL`` (Rasa's route, and eventstore's)."""
    response = httpx.get(
        f"{base_url}/conversations/{sender}/tracker", params={"include_events": "ALL"}, timeout=30
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class RasaRun:
    """A running ``rasa run --enable-api`` (REST channel on); its output is collected."""

    def __init__(
        self, rasa_python: Path, model: Path, endpoints: Path, site: Path, *, wait: bool = True
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(rasa_python), "-m", "rasa", "run", "--enable-api", "-i", "127.0.0.1",
             "-p", str(self.port), "-m", str(model), "--endpoints", str(endpoints)],
            cwd=endpoints.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=plugin_env(site),
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until ``/status`` names the loaded model; fails with the output if Rasa exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"rasa run exited ({self.proc.returncode}):\n{self.output[-5000:]}")
            try:
                status = httpx.get(f"{self.url}/status", timeout=2)
                if re.search(r'"model_id":\s*"[^"]', status.text):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"rasa run did not load its model:\n{self.output[-5000:]}")

    def say(self, sender: str, message: str) -> list[str]:
        """Send a message over the REST channel; the bot's texts."""
        response = httpx.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=30,
        )
        response.raise_for_status()
        return [reply.get("text") for reply in response.json()]

    def tracker(self, sender: str) -> dict[str, Any]:
        """Rasa's own ``GET /conversations/{id}/tracker`` (all events)."""
        return get_tracker(self.url, sender)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """Send SIGTERM (Rasa shuts down gracefully) without waiting."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(30) is None:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
