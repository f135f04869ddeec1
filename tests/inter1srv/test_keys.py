from inter1srv.keys import KeyStore


def test_keys_are_stored_hashed_and_revocable(tmp_path):
    store = KeyStore(tmp_path)
    record, secret = store.create("alice")
    assert secret not in (tmp_path / "keys.json").read_text()
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert store.verify(secret) == record
    assert store.verify(secret + "x") is None
    assert store.verify("") is None and store.verify(None) is None
    other = KeyStore(tmp_path)  # another process sees the same keys
    assert other.verify(secret).key_id == record.key_id
    assert store.revoke(record.key_id)
    assert other.verify(secret) is None
