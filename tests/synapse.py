"""A real Synapse homeserver on loopback for the tests: start, stop, restart, register users.

The recipe: generate a config once, then start with an overlay whose
top-level keys replace the generated ones (a loopback listener on a free
port, shared-secret registration, cheap bcrypt, no presence, rate limits
raised). Users are registered through the shared-secret admin API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVER_NAME = "localhost"
SECRET = "letsbot-test-secret"
_LIMIT = {"per_second": 1000, "burst_count": 1000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Synapse:
    """One homeserver in ``folder``; its port stays the same across restarts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log = folder / "synapse.out"
        self._admin_token: str | None = None

    def configure(self) -> None:
        config = self.folder / "homeserver.yaml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                str(config),
                "--data-directory",
                str(self.folder),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=self.folder,
            check=True,
            capture_output=True,
        )
        overlay: dict[str, Any] = {
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "registration_shared_secret": SECRET,
            "enable_registration": False,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "rc_message": _LIMIT,
            "rc_registration": _LIMIT,
            "rc_login": {"address": _LIMIT, "account": _LIMIT, "failed_attempts": _LIMIT},
            "rc_joins": {"local": _LIMIT, "remote": _LIMIT},
            "rc_joins_per_room": _LIMIT,
            "rc_invites": {"per_room": _LIMIT, "per_user": _LIMIT, "per_issuer": _LIMIT},
            "rc_room_creation": _LIMIT,
            "rc_3pid_validation": _LIMIT,
            "rc_admin_redaction": _LIMIT,
        }
        # JSON is YAML: no PyYAML call needed here.
        (self.folder / "overlay.yaml").write_text(json.dumps(overlay), encoding="utf-8")

    def start(self, timeout: float = 60) -> None:
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "synapse.app.homeserver",
                    "--config-path",
                    str(self.folder / "homeserver.yaml"),
                    "--config-path",
                    str(self.folder / "overlay.yaml"),
                ],
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SYNAPSE_CACHE_FACTOR": "0.5"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self._log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"synapse exited at start:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)  # a subprocess's readiness: polled, bounded by the deadline
        raise RuntimeError("synapse did not answer in time")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def register(self, user: str, password: str, *, admin: bool = False) -> str:
        """A new account through the shared-secret admin API; its full user id."""
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        with urllib.request.urlopen(endpoint, timeout=10) as answer:
            nonce = json.load(answer)["nonce"]
        role = b"admin" if admin else b"notadmin"
        mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), user.encode(), password.encode(), role]))
        body = {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        request = urllib.request.Request(
            endpoint,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.load(answer)["user_id"])

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A call of the admin API, as an admin account registered on first use."""
        if self._admin_token is None:
            admin = "synapseadmin"
            self.register(admin, SECRET, admin=True)
            login = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": admin},
                "password": SECRET,
            }
            self._admin_token = str(
                self._call("POST", "/_matrix/client/v3/login", login)["access_token"]
            )
        return self._call(method, path, body, self._admin_token)

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None = None
    ) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def limit_messages(self, user_id: str, per_second: int, burst: int) -> None:
        """Limit the events ``user_id`` sends (messages, joins): ``burst``, then ``per_second``."""
        self._admin(
            "POST",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            {"messages_per_second": per_second, "burst_count": burst},
        )

    def unlimit_messages(self, user_id: str) -> None:
        """Back to the homeserver's configured limits."""
        self._admin("DELETE", f"/_synapse/admin/v1/users/{user_id}/override_ratelimit")
