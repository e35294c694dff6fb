"""Stores on object storage through fsspec, against a real S3-compatible server (moto's
server mode) listening on loopback: no mocked client objects."""

import socket

import numpy as np
import pytest

from robolearn import keys as K
from robolearn.cli.data import main as data_main
from robolearn.data.check import check_store
from robolearn.data.dataset import WindowDataset, make_dataloader
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import make_synthetic_store, synthetic_episode

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    opts = {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="robolearn-test")
    yield endpoint, opts
    server.stop()


def test_s3_roundtrip_and_windows(s3):
    endpoint, opts = s3
    url = "s3://robolearn-test/demos.zarr"
    make_synthetic_store(url, [9, 14, 5], storage_options=opts).close()
    store = TrajectoryStore.open(url, "r", storage_options=opts)
    assert store.episode_lengths.tolist() == [9, 14, 5]
    np.testing.assert_array_equal(store.get_episode(1)[K.ACTION], synthetic_episode(14, 1)[K.ACTION])
    # append to the remote store
    w = TrajectoryStore.open(url, "a", storage_options=opts)
    w.append_episode(synthetic_episode(6, 3), store.episode_meta(0))
    store.refresh()
    assert store.n_episodes == 4
    # sampler path on a remote store, in-RAM and chunk-cache
    for budget in (1024.0, 0.02):
        ds = WindowDataset(url, n_obs=2, horizon=4, memory_budget_mb=budget, storage_options=opts)
        b = next(iter(make_dataloader(ds, batch_size=8, shuffle=True)))
        assert b[K.ACTION].shape == (8, 4, 8)
    assert check_store(url, opts).ok


def test_s3_cli_info_and_check(s3, capsys):
    endpoint, opts = s3
    url = "s3://robolearn-test/cli.zarr"
    make_synthetic_store(url, [4, 4], storage_options=opts).close()
    so = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
          "--storage-option", f"endpoint_url={endpoint}"]
    assert data_main(["info", url, *so]) == 0
    assert "episodes   2" in capsys.readouterr().out
    assert data_main(["check", url, *so]) == 0
