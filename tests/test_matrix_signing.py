"""The cross-signing module (adapters/matrix_signing.py) without a homeserver: the spec's
test vectors, canonical JSON, the sealed keys file. Against Synapse: tests/test_matrix.py
(``test_the_bots_device_is_cross_signed_by_its_own_account``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

pytest.importorskip("Crypto")

from adapters import matrix_signing as ms

# The Matrix spec's appendix "Cryptographic Test Vectors": a seed, server "domain", key "ed25519:1".
SEED = ms.unb64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")


def test_json_is_signed_as_the_spec_test_vectors_say() -> None:
    key = ms.SigningKey(SEED)
    empty = ms.signed({}, key, "domain", "ed25519:1")
    assert empty == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }
    data = ms.signed({"one": 1, "two": "Two"}, key, "domain", "ed25519:1")
    assert data["signatures"]["domain"]["ed25519:1"] == (
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    )
    assert ms.verify(data, "domain", "ed25519:1", key.public)
    # unsigned and other signatures are not covered, and are kept
    extra = {**data, "unsigned": {"age_ts": 1}}
    assert ms.verify(extra, "domain", "ed25519:1", key.public)
    assert not ms.verify({**data, "two": "Three"}, "domain", "ed25519:1", key.public)
    assert not ms.verify(data, "other", "ed25519:1", key.public)


def test_canonical_json() -> None:
    value = {"b": [1, {"d": "é", "c": None}], "a": "日本", "é": True}
    assert ms.canonical_json(value) == '{"a":"日本","b":[1,{"c":null,"d":"é"}],"é":true}'.encode()
    with pytest.raises(ValueError):
        ms.canonical_json({"x": float("nan")})


def test_the_master_key_signs_the_other_two() -> None:
    keys = ms.CrossSigningKeys.generate()
    body = keys.upload_body("@bot:hs")
    master = body["master_key"]
    assert master == {
        "user_id": "@bot:hs",
        "usage": ["master"],
        "keys": {keys.master.key_id: keys.master.public},
    }
    for usage in ("self_signing", "user_signing"):
        key = body[f"{usage}_key"]
        assert key["usage"] == [usage] and list(key["keys"].values()) == [
            getattr(keys, usage).public
        ]
        assert ms.verify(key, "@bot:hs", keys.master.key_id, keys.master.public)


def test_the_private_keys_are_sealed_with_the_pickle_key(tmp_path: Path) -> None:
    assert ms.load(tmp_path, "pickle") is None
    keys = ms.CrossSigningKeys.generate()
    ms.save(tmp_path, keys, "pickle")
    path = tmp_path / ms.KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for usage in ms.USAGES:
        assert ms.b64(getattr(keys, usage).seed) not in text
    again = ms.load(tmp_path, "pickle")
    assert again is not None
    assert [k.public for k in (again.master, again.self_signing, again.user_signing)] == [
        k.public for k in (keys.master, keys.self_signing, keys.user_signing)
    ]
    with pytest.raises(ms.SealError, match="does not open with this pickle key"):
        ms.load(tmp_path, "another key")
