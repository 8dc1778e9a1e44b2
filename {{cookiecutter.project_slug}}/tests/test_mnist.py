"""The MNIST example's own files: download, checks, the IDX format (test_data.py has the shared tests)."""

import functools
import gzip
import multiprocessing
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import {{ cookiecutter.package_name }}.data.mnist as mnist
from {{ cookiecutter.package_name }}.data.mnist import MNISTDataModule
from {{ cookiecutter.package_name }}.data.mnist_files import (
    LOCK,
    SHA256,
    MissingDataError,
    fetch_mnist,
    read_idx,
    write_idx,
)

# A port nothing listens on: a download attempt fails at once, without leaving this machine.
UNREACHABLE = ("http://127.0.0.1:9/",)
# A slow mirror's pause in each file: two processes started together are then downloading at the same time.
SLOW_SECONDS = 0.5


class MirrorHandler(BaseHTTPRequestHandler):
    """``/<kind>/<file>``: ``good`` sends the file, ``slow`` too but slowly, ``truncated`` drops the
    connection halfway through it, ``missing`` answers 404. Bodies are chunked, as CDNs send large files.
    """

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        body = self.server.files.get(name)
        if body is None or kind == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(b"%x\r\n%s\r\n" % (half, body[:half]))
        self.wfile.flush()
        if kind == "truncated":
            self.close_connection = True
            return
        if kind == "slow":
            time.sleep(SLOW_SECONDS)
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - half, body[half:]))

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirrors(fake_root):
    """A local HTTP server of the stand-in files; ``mirrors.url(kind)`` is a mirror of that kind."""
    root, checksums = fake_root
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.files = {name: (root / name).read_bytes() for name in checksums}
    server.requests = []  # the paths asked for, in order (list.append is atomic across threads)
    server.url = lambda kind: f"http://127.0.0.1:{server.server_port}/{kind}/"
    # A short poll interval: shutting the server down waits for one.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_root(tmp_path):
    arguments = MNISTDataModule.stand_in(tmp_path / "MNIST", train_size=200, test_size=50)
    return tmp_path / "MNIST", arguments["checksums"]


def make_datamodule(fake_root, **kwargs) -> MNISTDataModule:
    root, checksums = fake_root
    datamodule = MNISTDataModule(data_dir=str(root), checksums=checksums, **kwargs)
    datamodule.setup("fit")
    return datamodule


def test_idx_files_round_trip(tmp_path):
    values = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / "x.gz", values)
    assert torch.equal(read_idx(tmp_path / "x.gz"), values)


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"<html>Not Found</html>"))
    with pytest.raises(MissingDataError, match="not an IDX file"):
        read_idx(tmp_path / "x.gz")


def test_splits_and_batches(fake_root):
    datamodule = make_datamodule(fake_root, val_fraction=0.1, batch_size=16)
    sizes = {name: len(split) for name, split in datamodule.splits.items()}
    assert sizes == {"train": 180, "val": 20, "test": 50}
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (16, *datamodule.model_args()["input_shape"])
    assert images.dtype == torch.float32 and images.min() >= 0.0 and images.max() <= 1.0
    assert labels.dtype == torch.long and set(labels.tolist()) <= set(range(10))


def test_present_files_are_checked_not_downloaded(fake_root):
    root, checksums = fake_root
    fetch_mnist(root, checksums, mirrors=UNREACHABLE)  # nothing missing: no network needed


def test_a_damaged_file_is_refused(fake_root):
    root, checksums = fake_root
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    with pytest.raises(MissingDataError, match="t10k-labels-idx1-ubyte.gz has the wrong SHA-256"):
        fetch_mnist(root, checksums, mirrors=UNREACHABLE)


def test_offline_says_what_to_download_and_where(tmp_path):
    with pytest.raises(MissingDataError) as error:
        fetch_mnist(tmp_path, SHA256, mirrors=UNREACHABLE)
    message = str(error.value)
    assert message.startswith("cannot download train-images-idx3-ubyte.gz (http://127.0.0.1:9/")
    assert f"Download {', '.join(SHA256)} from http://127.0.0.1:9/ and put them in {tmp_path}/" in message
    assert [path.name for path in tmp_path.iterdir()] == [LOCK], "nothing half-downloaded is left behind"


def test_a_download_cut_short_tries_the_next_mirror(fake_root, mirrors, tmp_path):
    _, checksums = fake_root
    fetch_mnist(tmp_path / "data", checksums, mirrors=(mirrors.url("truncated"), mirrors.url("good")))
    assert all((tmp_path / "data" / name).read_bytes() == mirrors.files[name] for name in checksums)
    asked = {f"/{kind}/{name}" for kind in ("truncated", "good") for name in checksums}
    assert Counter(mirrors.requests) == Counter(asked)
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == sorted([LOCK, *checksums])


def test_all_mirrors_failing_is_one_line_naming_file_and_mirrors(fake_root, mirrors, tmp_path, monkeypatch):
    _, checksums = fake_root
    tried = (mirrors.url("truncated"), mirrors.url("missing"))
    monkeypatch.setattr(mnist, "fetch_mnist", functools.partial(fetch_mnist, mirrors=tried))
    with pytest.raises(SystemExit) as failure:
        MNISTDataModule(data_dir=str(tmp_path / "data"), checksums=checksums).prepare_data()
    message, first = str(failure.value), next(iter(checksums))
    assert message.startswith(f"error: cannot download {first} (") and "\n" not in message
    assert all(f"{mirror}{first}: " in message for mirror in tried)
    assert [path.name for path in (tmp_path / "data").iterdir()] == [LOCK], "nothing half-downloaded is left"


def test_processes_downloading_at_once_share_one_download(fake_root, mirrors, tmp_path):
    _, checksums = fake_root
    # Started as ranks or nodes are: together, as fresh interpreters, each with its own lock.
    context = multiprocessing.get_context("spawn")
    arguments = (tmp_path / "data", checksums, (mirrors.url("slow"),))
    processes = [context.Process(target=fetch_mnist, args=arguments) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=1200)
    assert [process.exitcode for process in processes] == [0, 0]
    assert Counter(mirrors.requests) == Counter(f"/slow/{name}" for name in checksums)
    assert all((tmp_path / "data" / name).read_bytes() == mirrors.files[name] for name in checksums)
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == sorted([LOCK, *checksums])
