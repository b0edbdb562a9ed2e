"""Ed25519 signatures over canonical JSON: the bots of two partner groups sign what
they say to each other (letsbot.partners). Matrix's cross-signing uses the same
canonical form (adapters/matrix_signing.py)."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any, Self

import vodozemac
from Crypto.Signature import eddsa


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no white space, UTF-8, no floats: the bytes that are signed."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode("utf-8")


def b64(data: bytes) -> str:
    """Unpadded base64."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class SigningKey:
    """One Ed25519 key pair, from its 32-byte seed (the private part: never logged)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an ed25519 seed has 32 bytes")
        self.seed = seed
        self._key = eddsa.import_private_key(seed)
        self.public = b64(self._key.public_key().export_key(format="raw"))

    @classmethod
    def generate(cls) -> Self:
        return cls(secrets.token_bytes(32))

    def sign(self, message: bytes) -> str:
        return b64(eddsa.new(self._key, "rfc8032").sign(message))

    def __repr__(self) -> str:  # the seed stays out of any traceback or log
        return f"SigningKey(public={self.public})"


def valid_public_key(text: str) -> bool:
    """Whether ``text`` is an Ed25519 public key as ``SigningKey.public`` shows it."""
    try:
        eddsa.import_public_key(unb64(text.strip()))
    except (ValueError, TypeError):
        return False
    return True


def sign_object(value: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """``value`` with a ``signature`` over the canonical form of the rest."""
    body = {k: v for k, v in value.items() if k != "signature"}
    return {**body, "signature": key.sign(canonical_json(body))}


def verify_object(value: dict[str, Any], public: str) -> bool:
    """Whether ``value``'s ``signature`` is ``public``'s over the canonical form of the rest."""
    signature = value.get("signature")
    if not isinstance(signature, str):
        return False
    body = {k: v for k, v in value.items() if k != "signature"}
    # vodozemac's check (Rust) takes a tenth of pycryptodome's: each payment between
    # groups is checked on both sides while its payer waits.
    try:
        vodozemac.Ed25519PublicKey.from_base64(public).verify_signature(
            canonical_json(body), vodozemac.Ed25519Signature.from_base64(signature)
        )
    except (ValueError, TypeError):  # its exceptions are ValueErrors
        return False
    return True
