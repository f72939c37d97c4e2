"""The trainer's read-through object cache (ML_TRAINER_CACHE_DIR) against the real MinIO.

What goes to the object store is counted with botocore's own event hooks on the client, so
"served from the cache" means "no GetObject request was sent", not a timing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from devstack.stack import Stack
from ml_trainer.object_cache import ObjectCache
from ml_trainer.storage import ObjectStore, S3Uri
from trainer_support import isolated_environ, trainer_env_of


def counting_store(stack: Stack, cache_dir: Path) -> tuple[ObjectStore, Counter[str]]:
    """An ObjectStore on the stack's MinIO with a cache, and a count of the S3 calls it makes."""
    with isolated_environ(**trainer_env_of(stack)):
        store = ObjectStore(cache=ObjectCache(cache_dir))
        client = store.client  # built from the stack's environment
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return store, calls


@pytest.fixture
def uri(stack: Stack) -> S3Uri:
    return S3Uri(stack.buckets["processed"], f"cache-tests/{uuid.uuid4().hex}/train.parquet")


def test_a_written_object_is_read_back_from_the_cache(stack, tmp_path, uri) -> None:
    writer, _ = counting_store(stack, tmp_path / "cache")
    writer.write_bytes(uri, b"first version")  # preprocess fills the cache as it writes

    reader, calls = counting_store(stack, tmp_path / "cache")  # another pod, same volume
    assert reader.read_bytes(uri) == b"first version"
    assert reader.read_bytes(uri) == b"first version"
    assert calls == {"HeadObject": 2}  # the current ETag is checked, the bytes are not fetched


def test_a_changed_object_is_fetched_again(stack, tmp_path, uri) -> None:
    store, calls = counting_store(stack, tmp_path / "cache")
    store.write_bytes(uri, b"first version")
    stack.s3_client().put_object(Bucket=uri.bucket, Key=uri.key, Body=b"second version")

    calls.clear()
    assert store.read_bytes(uri) == b"second version"
    assert calls == {"HeadObject": 1, "GetObject": 1}
    calls.clear()
    assert store.read_bytes(uri) == b"second version"  # and now that version is cached
    assert calls == {"HeadObject": 1}


def test_an_object_read_first_is_cached_on_the_way(stack, tmp_path, uri) -> None:
    stack.s3_client().put_object(Bucket=uri.bucket, Key=uri.key, Body=b"uploaded elsewhere")
    store, calls = counting_store(stack, tmp_path / "cache")
    assert store.read_bytes(uri) == b"uploaded elsewhere"
    assert store.read_bytes(uri) == b"uploaded elsewhere"
    assert calls == {"HeadObject": 2, "GetObject": 1}


def test_an_unwritable_cache_still_reads_from_the_object_store(stack, tmp_path, uri) -> None:
    """A read-only mount (every training task but preprocess): reads work, nothing breaks."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    store, calls = counting_store(stack, blocked)
    store.write_bytes(uri, b"payload")
    assert store.read_bytes(uri) == b"payload"
    assert store.read_bytes(uri) == b"payload"
    assert calls == {"PutObject": 1, "HeadObject": 2, "GetObject": 2}


def test_a_missing_object_is_named_in_the_error(stack, tmp_path, uri) -> None:
    from ml_trainer.errors import TrainerError

    store, _ = counting_store(stack, tmp_path / "cache")
    with pytest.raises(TrainerError, match=r"does not exist"):
        store.read_bytes(uri)


def test_the_pod_environment_turns_the_cache_on(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ML_TRAINER_CACHE_DIR", str(tmp_path / "cache"))
    assert ObjectStore(client=object()).cache.root == tmp_path / "cache"
    monkeypatch.delenv("ML_TRAINER_CACHE_DIR")
    assert ObjectStore(client=object()).cache is None
