"""The bot's cross-signing keys in the account's secret storage, opened with a recovery key.

When the bot's store folder is lost, its cross-signing keys are lost with it,
and making new ones would replace the identity members' clients know. So the
private keys are also kept on the homeserver, encrypted, as Element keeps its
own: "secure secret storage and sharing" (SSSS) in the account data, opened
with a recovery key the operator keeps apart from the store.

From the Matrix spec (client-server API, "Secrets"; appendix "Cryptographic
key representation"):

- A recovery key is 32 random bytes, shown as base58 (the Bitcoin alphabet) of
  ``0x8B 0x01 + key + parity``, the parity byte being the XOR of all bytes
  before it, with a space after every 4th character.
- The key is described in account data ``m.secret_storage.key.<id>``
  (``algorithm`` ``m.secret_storage.v1.aes-hmac-sha2``, and optionally ``iv``
  and ``mac`` to check a key against: the MAC of 32 zero bytes encrypted with
  it); ``m.secret_storage.default_key`` names the default one.
- A secret is stored under its own name (``m.cross_signing.master``,
  ``.self_signing``, ``.user_signing``: each the unpadded base64 of the private
  key's 32-byte seed) as ``{"encrypted": {<key id>: {iv, ciphertext, mac}}}``.
  From the key, HKDF-SHA-256 (salt: 32 zero bytes, info: the secret's name, or
  '' for the check) gives 64 bytes: an AES-CTR-256 key and an HMAC-SHA-256 key.
  The IV is 16 random bytes with bit 63 cleared; the MAC is over the ciphertext.
  Base64 may come padded or not.
"""

from __future__ import annotations

import hmac
import secrets
from hashlib import sha256
from typing import Any
from urllib.parse import quote

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from adapters.matrix_signing import USAGES, CrossSigningKeys, Http, SigningKey, unb64
from letsbot.signing import b64

ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2"
DEFAULT_KEY = "m.secret_storage.default_key"
PREFIX = bytes((0x8B, 0x01))
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class RecoveryError(Exception):
    """The recovery key or the secret storage can't give the keys; one line for the operator."""


# the recovery key as people write it down ------------------------------------------


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = ALPHABET[digit] + text
    zeros = len(data) - len(data.lstrip(b"\0"))
    return ALPHABET[0] * zeros + text


def base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = ALPHABET.find(char)
        if digit < 0:
            raise RecoveryError("the recovery key has a character a recovery key never has")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip(ALPHABET[0]))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _parity(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_recovery_key(key: bytes) -> str:
    data = PREFIX + key
    text = base58_encode(data + bytes((_parity(data),)))
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def decode_recovery_key(text: str) -> bytes:
    """The 32-byte key of a recovery key as typed (white space ignored)."""
    data = base58_decode("".join(text.split()))
    if _parity(data) != 0:
        raise RecoveryError("the recovery key is mistyped (its check digit doesn't match)")
    if len(data) != len(PREFIX) + 33 or not data.startswith(PREFIX):
        raise RecoveryError("this is not a Matrix recovery key (wrong length or start)")
    return data[len(PREFIX) : -1]


def new_recovery_key() -> bytes:
    return secrets.token_bytes(32)


# AES-CTR with HMAC-SHA-256 ------------------------------------------------------------


def _keys(key: bytes, name: str) -> tuple[bytes, bytes]:
    derived = HKDF(key, 64, bytes(32), SHA256, context=name.encode("utf-8"))
    assert isinstance(derived, bytes)
    return derived[:32], derived[32:]


def _iv() -> bytes:
    iv = bytearray(secrets.token_bytes(16))
    iv[8] &= 0x7F  # bit 63 cleared, as the spec asks
    return bytes(iv)


def _ctr(aes_key: bytes, iv: bytes, data: bytes) -> bytes:
    return bytes(AES.new(aes_key, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data))


def encrypt(key: bytes, name: str, plain: bytes) -> dict[str, str]:
    aes_key, mac_key = _keys(key, name)
    iv = _iv()
    ciphertext = _ctr(aes_key, iv, plain)
    mac = hmac.new(mac_key, ciphertext, sha256).digest()
    return {"iv": b64(iv), "ciphertext": b64(ciphertext), "mac": b64(mac)}


def decrypt(key: bytes, name: str, data: dict[str, Any]) -> bytes:
    try:
        iv, ciphertext, mac = (unb64(str(data[part])) for part in ("iv", "ciphertext", "mac"))
    except (KeyError, ValueError):
        raise RecoveryError(f"the stored {name} is damaged") from None
    aes_key, mac_key = _keys(key, name)
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, sha256).digest(), mac):
        raise RecoveryError(f"the recovery key does not open {name}")
    return _ctr(aes_key, iv, ciphertext)


def _check(key: bytes, iv: bytes) -> bytes:
    """The key check's MAC: of 32 zero bytes encrypted with ``key`` (info '') and ``iv``."""
    aes_key, mac_key = _keys(key, "")
    return hmac.new(mac_key, _ctr(aes_key, iv, bytes(32)), sha256).digest()


def describe(key: bytes) -> dict[str, str]:
    """A key description with the check the spec recommends."""
    iv = _iv()
    return {"algorithm": ALGORITHM, "iv": b64(iv), "mac": b64(_check(key, iv))}


def matches(key: bytes, description: dict[str, Any]) -> bool:
    """Whether ``key`` is the key ``description`` describes (without a check: assumed)."""
    if description.get("algorithm") != ALGORITHM:
        return False
    if "iv" not in description or "mac" not in description:
        return True
    try:
        iv, mac = unb64(str(description["iv"])), unb64(str(description["mac"]))
    except ValueError:
        return False
    return hmac.compare_digest(_check(key, iv), mac)


# the account data -----------------------------------------------------------------


def _path(user_id: str, kind: str) -> str:
    return f"/user/{quote(user_id, safe='')}/account_data/{quote(kind, safe='')}"


async def _get(http: Http, user_id: str, kind: str) -> dict[str, Any] | None:
    status, answer = await http("GET", _path(user_id, kind), None)
    if status == 404:
        return None
    if status != 200:
        raise RecoveryError(f"account data {kind}: HTTP {status} {answer.get('errcode', '')}")
    return answer


async def _put(http: Http, user_id: str, kind: str, content: dict[str, Any]) -> None:
    status, answer = await http("PUT", _path(user_id, kind), content)
    if status != 200:
        raise RecoveryError(f"account data {kind}: HTTP {status} {answer.get('errcode', '')}")


async def restore(http: Http, user_id: str, key: bytes) -> CrossSigningKeys:
    """The three private keys from the account's secret storage, opened with ``key``."""
    seeds: dict[str, bytes] = {}
    descriptions: dict[str, dict[str, Any] | None] = {}
    for usage in USAGES:
        name = f"m.cross_signing.{usage}"
        stored = await _get(http, user_id, name)
        encrypted = (stored or {}).get("encrypted") or {}
        if not encrypted:
            raise RecoveryError(
                f"the account keeps no {name} in its secret storage: the keys were not"
                " saved with a recovery key"
            )
        for key_id, data in encrypted.items():
            if key_id not in descriptions:
                descriptions[key_id] = await _get(http, user_id, f"m.secret_storage.key.{key_id}")
            description = descriptions[key_id]
            if description is not None and matches(key, description) and isinstance(data, dict):
                seeds[usage] = _seed(decrypt(key, name, data), name)
                break
        else:
            raise RecoveryError(f"the recovery key is not the one {name} was saved with")
    try:
        return CrossSigningKeys(*(SigningKey(seeds[usage]) for usage in USAGES))
    except ValueError as error:
        raise RecoveryError(f"a restored key is damaged ({error})") from None


def _seed(plain: bytes, name: str) -> bytes:
    try:
        return unb64(plain.decode("ascii").strip())
    except ValueError:  # also a UnicodeDecodeError, a binascii.Error
        raise RecoveryError(f"the stored {name} is damaged") from None


async def save(http: Http, user_id: str, keys: CrossSigningKeys, key: bytes) -> str:
    """The three private keys into secret storage under ``key``, made the default; its id."""
    key_id = "".join(secrets.choice(ALPHABET) for _ in range(32))
    await _put(
        http, user_id, f"m.secret_storage.key.{key_id}", {"name": "letsbot", **describe(key)}
    )
    for usage in USAGES:
        name = f"m.cross_signing.{usage}"
        seed: bytes = getattr(keys, usage).seed
        content = {"encrypted": {key_id: encrypt(key, name, b64(seed).encode("ascii"))}}
        await _put(http, user_id, name, content)
    await _put(http, user_id, DEFAULT_KEY, {"key": key_id})
    return key_id
