"""Secret storage and the recovery key (adapters/matrix_recovery.py) without a homeserver.

The primitives are checked against a second implementation (the ``cryptography``
package, which the test tools bring) rather than against themselves. Against
Synapse: tests/test_matrix.py (``test_a_lost_store_restores_the_bots_identity...``).
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any

import pytest

pytest.importorskip("Crypto")
pytest.importorskip("cryptography")

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters import matrix_recovery as mr
from adapters.matrix_signing import CrossSigningKeys, b64, unb64


def test_base58_as_bitcoin_writes_it() -> None:
    # The examples of the base58 draft (draft-msporny-base58): leading zero bytes are 1s.
    assert mr.base58_encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert mr.base58_encode(bytes.fromhex("0000287fb4cd")) == "11233QC4"
    assert mr.base58_decode("11233QC4") == bytes.fromhex("0000287fb4cd")
    with pytest.raises(mr.RecoveryError):
        mr.base58_decode("0OIl")  # letters base58 leaves out, so they can't be misread


def test_a_recovery_key_reads_back_and_catches_a_typo() -> None:
    key = bytes(range(32))
    text = mr.encode_recovery_key(key)
    groups = text.split(" ")
    assert all(len(g) == 4 for g in groups[:-1]) and len(groups) == 12
    assert text.startswith("Es")  # 0x8B 0x01 in front: how Element's recovery keys look
    assert mr.decode_recovery_key(text) == key
    assert mr.decode_recovery_key(text.replace(" ", "") + "\n") == key
    typo = text[:-1] + ("a" if text[-1] != "a" else "b")
    with pytest.raises(mr.RecoveryError, match="mistyped"):
        mr.decode_recovery_key(typo)
    with pytest.raises(mr.RecoveryError):
        mr.decode_recovery_key(mr.base58_encode(b"\x8b\x01\x00\x8a"))


def _reference_decrypt(key: bytes, name: str, data: dict[str, str]) -> bytes:
    """The spec's steps with another library: HKDF-SHA-256, AES-CTR-256, HMAC-SHA-256."""
    derived = HKDF(algorithm=SHA256(), length=64, salt=bytes(32), info=name.encode()).derive(key)
    ciphertext = unb64(data["ciphertext"])
    assert hmac.new(derived[32:], ciphertext, sha256).digest() == unb64(data["mac"])
    decryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(unb64(data["iv"]))).decryptor()
    return bytes(decryptor.update(ciphertext) + decryptor.finalize())


def test_a_secret_is_encrypted_as_the_spec_says() -> None:
    key = mr.new_recovery_key()
    data = mr.encrypt(key, "m.cross_signing.master", b"the seed")
    assert not unb64(data["iv"])[8] & 0x80  # bit 63 of the IV is cleared
    assert _reference_decrypt(key, "m.cross_signing.master", data) == b"the seed"
    assert mr.decrypt(key, "m.cross_signing.master", data) == b"the seed"
    with pytest.raises(mr.RecoveryError, match="does not open"):
        mr.decrypt(mr.new_recovery_key(), "m.cross_signing.master", data)
    with pytest.raises(mr.RecoveryError, match="does not open"):  # the name is bound in
        mr.decrypt(key, "m.cross_signing.self_signing", data)
    padded = {k: v + "=" * (-len(v) % 4) for k, v in data.items()}  # some clients pad
    assert mr.decrypt(key, "m.cross_signing.master", padded) == b"the seed"


def test_a_key_description_tells_the_right_key() -> None:
    key = mr.new_recovery_key()
    description = mr.describe(key)
    assert description["algorithm"] == "m.secret_storage.v1.aes-hmac-sha2"
    # the check is the MAC of 32 zero bytes: the reference decrypts them back
    zeros = _reference_decrypt(
        key, "", {**description, "ciphertext": _ciphertext_of_zeros(key, description)}
    )
    assert zeros == bytes(32)
    assert mr.matches(key, description)
    assert not mr.matches(mr.new_recovery_key(), description)
    assert mr.matches(key, {"algorithm": mr.ALGORITHM})  # no check given: assumed right
    assert not mr.matches(key, {**description, "algorithm": "m.other"})


def _ciphertext_of_zeros(key: bytes, description: dict[str, Any]) -> str:
    aes = HKDF(algorithm=SHA256(), length=64, salt=bytes(32), info=b"").derive(key)
    encryptor = Cipher(algorithms.AES(aes[:32]), modes.CTR(unb64(description["iv"]))).encryptor()
    return b64(encryptor.update(bytes(32)) + encryptor.finalize())


async def test_keys_saved_in_account_data_come_back_with_the_key() -> None:
    account: dict[str, dict[str, Any]] = {}

    async def http(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        kind = path.rsplit("/", 1)[1]
        if method == "PUT":
            assert body is not None
            account[kind] = body
            return 200, {}
        return (200, account[kind]) if kind in account else (404, {"errcode": "M_NOT_FOUND"})

    keys = CrossSigningKeys.generate()
    key = mr.new_recovery_key()
    key_id = await mr.save(http, "@bot:hs", keys, key)
    assert account[mr.DEFAULT_KEY] == {"key": key_id}
    stored = account["m.cross_signing.master"]["encrypted"][key_id]
    assert _reference_decrypt(key, "m.cross_signing.master", stored) == b64(
        keys.master.seed
    ).encode("ascii")
    again = await mr.restore(http, "@bot:hs", key)
    assert [k.public for k in (again.master, again.self_signing, again.user_signing)] == [
        k.public for k in (keys.master, keys.self_signing, keys.user_signing)
    ]
    with pytest.raises(mr.RecoveryError, match="not the one"):
        await mr.restore(http, "@bot:hs", mr.new_recovery_key())
    damaged = mr.encrypt(key, "m.cross_signing.master", b"\xff not base64")
    account["m.cross_signing.master"] = {"encrypted": {key_id: damaged}}
    with pytest.raises(mr.RecoveryError, match="damaged"):
        await mr.restore(http, "@bot:hs", key)
    account.clear()  # nothing saved: an empty account
    with pytest.raises(mr.RecoveryError, match="keeps no"):
        await mr.restore(http, "@bot:hs", key)
