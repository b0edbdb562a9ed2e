"""Cross-signing of the bot's Matrix device: its master, self-signing and user-signing keys.

matrix-nio has no cross-signing, and Element shows (and since MSC4153 may
refuse) a device its owner never signed. So the bot makes its three ed25519
keys once, publishes them (``POST /keys/device_signing/upload``, which may ask
for the account's password: user-interactive authentication), and signs its
own device with the self-signing key (``POST /keys/signatures/upload``).

From the Matrix spec: objects are signed over their canonical JSON (keys
sorted, no white space, UTF-8) without ``signatures`` and ``unsigned``; the
signature is unpadded base64 under ``signatures[user_id]["ed25519:<key id>"]``,
and a cross-signing key's id is its unpadded base64 public key. The master key
signs the other two; the self-signing key signs the user's devices.

The private keys (32-byte seeds) are kept in the store folder in one file,
sealed with the store's pickle key (AES-GCM), 0600; a restart reuses them, so
members' clients keep seeing the same identity. ed25519 and AES come from
pycryptodome, which matrix-nio already depends on. They are also kept,
encrypted, in the account's secret storage (``adapters/matrix_recovery.py``):
keys the account already has are never replaced, but restored with the
operator's recovery key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES
from Crypto.Signature import eddsa

from letsbot.signing import SigningKey as Ed25519Key
from letsbot.signing import b64, canonical_json

KEYS_FILE = "cross-signing.json"
USAGES = ("master", "self_signing", "user_signing")

# (method, path below /_matrix/client/v3, JSON body or None) -> (HTTP status, JSON answer)
Http = Callable[[str, str, dict[str, Any] | None], Awaitable[tuple[int, dict[str, Any]]]]


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class SigningKey(Ed25519Key):
    """One ed25519 key pair, named as cross-signing names its keys."""

    @property
    def key_id(self) -> str:
        """``ed25519:<public key>``, as cross-signing keys are named."""
        return f"ed25519:{self.public}"


def signed(value: dict[str, Any], key: SigningKey, signer: str, key_id: str = "") -> dict[str, Any]:
    """A copy of ``value`` with ``signer``'s signature by ``key`` added to its others."""
    body = {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
    signature = key.sign(canonical_json(body))
    signatures = {user: dict(sigs) for user, sigs in value.get("signatures", {}).items()}
    signatures.setdefault(signer, {})[key_id or key.key_id] = signature
    copy = dict(value)
    copy["signatures"] = signatures
    return copy


def verify(value: dict[str, Any], signer: str, key_id: str, public: str) -> bool:
    """Whether ``value`` carries a valid signature of ``signer`` by ``public`` (a check)."""
    signature = value.get("signatures", {}).get(signer, {}).get(key_id)
    if not isinstance(signature, str):
        return False
    body = {k: v for k, v in value.items() if k not in ("signatures", "unsigned")}
    try:
        checker = eddsa.new(eddsa.import_public_key(unb64(public)), "rfc8032")
        checker.verify(canonical_json(body), unb64(signature))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class CrossSigningKeys:
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls) -> CrossSigningKeys:
        return cls(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    def public_object(self, user_id: str, usage: str) -> dict[str, Any]:
        """The public key object of ``usage``; the other two are signed by the master key."""
        key: SigningKey = getattr(self, usage)
        value: dict[str, Any] = {
            "user_id": user_id,
            "usage": [usage],
            "keys": {key.key_id: key.public},
        }
        return value if usage == "master" else signed(value, self.master, user_id)

    def upload_body(self, user_id: str) -> dict[str, Any]:
        return {f"{usage}_key": self.public_object(user_id, usage) for usage in USAGES}


def _sealing_key(pickle_key: str) -> bytes:
    return hashlib.sha256(b"letsbot cross-signing\0" + pickle_key.encode("utf-8")).digest()


def save(folder: Path, keys: CrossSigningKeys, pickle_key: str) -> None:
    """The seeds, sealed with the pickle key, in one 0600 file (written whole, then renamed)."""
    plain = canonical_json({usage: b64(getattr(keys, usage).seed) for usage in USAGES})
    nonce = secrets.token_bytes(12)
    cipher = AES.new(_sealing_key(pickle_key), AES.MODE_GCM, nonce=nonce)
    sealed, tag = cipher.encrypt_and_digest(plain)
    text = json.dumps({"version": 1, "nonce": b64(nonce), "sealed": b64(sealed), "tag": b64(tag)})
    _write_private(folder / KEYS_FILE, text)


def _write_private(path: Path, text: str) -> None:
    """``text`` in a 0600 file, written whole, then renamed over ``path``."""
    temporary = path.with_name(f".{path.name}.new")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class SealError(Exception):
    """The keys file is there but doesn't open with this pickle key."""


def load(folder: Path, pickle_key: str) -> CrossSigningKeys | None:
    path = folder / KEYS_FILE
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        cipher = AES.new(_sealing_key(pickle_key), AES.MODE_GCM, nonce=unb64(stored["nonce"]))
        plain = cipher.decrypt_and_verify(unb64(stored["sealed"]), unb64(stored["tag"]))
        seeds = json.loads(plain)
        return CrossSigningKeys(*(SigningKey(unb64(seeds[usage])) for usage in USAGES))
    except (ValueError, KeyError, TypeError) as error:
        raise SealError(f"{path} does not open with this pickle key ({error})") from None


class Outcome(Enum):
    SIGNED = "the device is cross-signed"  # already, or now
    NEEDS_PASSWORD = "publishing the cross-signing keys needs the account's password"
    NEEDS_RECOVERY_KEY = (
        "the account already has cross-signing keys that this store doesn't hold;"
        " the bot leaves them as they are"
    )
    FAILED = "the homeserver refused the cross-signing keys or the device's signature"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""
    published: bool = False  # new keys were uploaded this time
    signed_now: bool = False  # the device was signed this time
    with_password: bool = False  # the homeserver asked for the password to publish them
    restored: bool = False  # the keys came from the account's secret storage this time
    recovery_file: Path | None = None  # where a recovery key made this time was written
    unsaved: str = ""  # why the new keys are not in the account's secret storage


RECOVERY_FILE = "recovery-key"


async def cross_sign(
    http: Http,
    user_id: str,
    device_id: str,
    folder: Path,
    pickle_key: str,
    password: str,
    recovery_key: str = "",
) -> Result:
    """The bot's device cross-signed: keys made (once), published, the device signed.

    Keys the account already has are never replaced: with ``recovery_key``
    they are restored from its secret storage, without it nothing is changed.
    Keys the bot makes are also put in that storage, under ``recovery_key``
    or under a new one written to ``folder/recovery-key`` for the operator.
    Idempotent: what the homeserver already has is not sent again.
    """
    from adapters import matrix_recovery as recovery  # it builds on this module

    keys = load(folder, pickle_key)
    status, query = await http("POST", "/keys/query", {"device_keys": {user_id: [device_id]}})
    if status != 200:
        return Result(Outcome.FAILED, f"keys/query: HTTP {status} {query.get('errcode', '')}")
    published_keys = query.get("master_keys", {}).get(user_id, {}).get("keys", {})
    restored = False
    if published_keys and (keys is None or keys.master.key_id not in published_keys):
        if not recovery_key:
            return Result(Outcome.NEEDS_RECOVERY_KEY)
        try:
            keys = await recovery.restore(http, user_id, recovery.decode_recovery_key(recovery_key))
        except recovery.RecoveryError as error:
            return Result(Outcome.NEEDS_RECOVERY_KEY, str(error))
        ssk = query.get("self_signing_keys", {}).get(user_id, {}).get("keys", {})
        if keys.master.key_id not in published_keys or keys.self_signing.key_id not in ssk:
            return Result(
                Outcome.NEEDS_RECOVERY_KEY,
                "the secret storage holds other keys than the account publishes",
            )
        save(folder, keys, pickle_key)
        restored = True
    published = with_password = False
    recovery_file = None
    unsaved = ""
    if not published_keys:
        if keys is None:
            keys = CrossSigningKeys.generate()
            save(folder, keys, pickle_key)  # before publishing: a crash in between reuses them
        result = await _publish(http, keys, user_id, password)
        if result.outcome is not Outcome.SIGNED:
            return result
        published, with_password = True, result.with_password
        try:
            secret = recovery.decode_recovery_key(recovery_key) if recovery_key else b""
            if not secret:
                secret = recovery.new_recovery_key()
                recovery_file = folder / RECOVERY_FILE
                _write_private(recovery_file, recovery.encode_recovery_key(secret) + "\n")
            await recovery.save(http, user_id, keys, secret)
        except recovery.RecoveryError as error:  # the device is signed all the same
            unsaved = str(error)
    assert keys is not None
    device = query.get("device_keys", {}).get(user_id, {}).get(device_id)
    if not isinstance(device, dict):
        return Result(Outcome.FAILED, f"the homeserver has no keys of device {device_id}")
    key_id = keys.self_signing.key_id
    if not published and verify(device, user_id, key_id, keys.self_signing.public):
        return Result(Outcome.SIGNED, restored=restored)
    own = {k: v for k, v in device.items() if k not in ("signatures", "unsigned")}
    body = {user_id: {device_id: signed(own, keys.self_signing, user_id)}}
    status, answer = await http("POST", "/keys/signatures/upload", body)
    failures = answer.get("failures") or {}
    if status != 200 or failures:
        return Result(Outcome.FAILED, f"keys/signatures/upload: HTTP {status} {failures or answer}")
    return Result(
        Outcome.SIGNED,
        published=published,
        signed_now=True,
        with_password=with_password,
        restored=restored,
        recovery_file=recovery_file,
        unsaved=unsaved,
    )


async def _publish(http: Http, keys: CrossSigningKeys, user_id: str, password: str) -> Result:
    """Upload the three public keys; with the password when the homeserver asks for it.

    The outcome SIGNED here means "published"; the device is signed after it.
    """
    body = keys.upload_body(user_id)
    status, answer = await http("POST", "/keys/device_signing/upload", body)
    if status == 401 and "flows" in answer:
        stages = {s for flow in answer.get("flows", []) for s in flow.get("stages", [])}
        if not password or "m.login.password" not in stages:
            return Result(Outcome.NEEDS_PASSWORD, "the homeserver asks to authenticate")
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "session": answer.get("session"),
        }
        status, answer = await http("POST", "/keys/device_signing/upload", {**body, "auth": auth})
        if status == 200:
            return Result(Outcome.SIGNED, with_password=True)
    if status != 200:
        code = answer.get("errcode", "")
        return Result(Outcome.FAILED, f"keys/device_signing/upload: HTTP {status} {code}")
    return Result(Outcome.SIGNED)
