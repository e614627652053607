"""softorder.datasets: the label-ranking loader (local folder, cache, download with checksum)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from softorder._src import datasets as D
from softorder.datasets import label_ranking_names, load_label_ranking

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "label_ranking"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no folder {SHARED}")

PUBLIC = ("4,2,3,f1,f2,a,b,c\n"  # the public copy's format: names in the header, six digits
          "-0.555556,0.25,1,2,3\n"
          "-4.03573E-8,1.0,3,1,2\n"
          "0.123456,-0.0833334,2,3,1\n"
          "1.0,-1.0,1,3,2\n")
CONVERTED = (b"4,2,3\r\n-0.55556,0.25000,1,2,3\r\n0.00000,1.00000,3,1,2\r\n"
             b"0.12346,-0.08333,2,3,1\r\n1.00000,-1.00000,1,3,2\r\n")


def test_label_ranking_names_are_the_papers_21_sets():
    names = label_ranking_names()
    assert len(names) == 21 and list(names) == sorted(names)
    assert {"iris", "wine", "fried", "spo", "heat", "elevators"} <= set(names)


@needs_shared
@pytest.mark.parametrize("name", sorted(p.stem for p in SHARED.glob("*.csv")))
def test_recorded_checksums_and_shapes_are_those_of_the_shared_files(name):
    _, shape, sha = D._SETS[name]
    assert hashlib.sha256((SHARED / f"{name}.csv").read_bytes()).hexdigest() == sha
    x, r = load_label_ranking(name, data_dir=SHARED, cache_dir="/nonexistent", download=False)
    assert (x.shape[0], x.shape[1], r.shape[1]) == shape
    assert np.all(np.sort(r, 1) == np.arange(1, r.shape[1] + 1))  # complete rankings


@needs_shared
def test_conversion_reproduces_a_shared_file_byte_for_byte():
    text = (SHARED / "iris.csv").read_text()
    lines = text.splitlines()
    public = "\n".join([lines[0] + ",a,b,c,d,x,y,z"] + [
        ",".join([repr(float(v)) for v in ln.split(",")[:4]] + ln.split(",")[4:])
        for ln in lines[1:]]) + "\n"
    assert D._convert(public, "test") == (SHARED / "iris.csv").read_bytes()


def test_env_var_folder_is_read(tmp_path, monkeypatch):
    (tmp_path / "iris.csv").write_bytes(CONVERTED)
    monkeypatch.setitem(D._SETS, "iris", ("c", (4, 2, 3), None))
    monkeypatch.setenv("SOFTORDER_LABEL_RANKING_DIR", str(tmp_path))
    x, r = load_label_ranking("iris", cache_dir=tmp_path / "cache", download=False)
    np.testing.assert_array_equal(r[1], [3, 1, 2])
    assert x[0, 0] == -0.55556


def _serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_download_converts_checks_the_checksum_and_caches(tmp_path, monkeypatch, scheme):
    src = tmp_path / "src"
    src.mkdir()
    (src / "wine.csv").write_text(PUBLIC)
    srv = _serve(src) if scheme == "http" else None
    try:
        base = (f"http://127.0.0.1:{srv.server_address[1]}" if srv else src.as_uri())
        monkeypatch.setenv("SOFTORDER_LABEL_RANKING_URL", base + "/{name}.csv")
        monkeypatch.setitem(D._SETS, "wine", ("c", (4, 2, 3),
                                              hashlib.sha256(CONVERTED).hexdigest()))
        cache = tmp_path / "cache"
        x, r = load_label_ranking("wine", cache_dir=cache)
        assert (cache / "wine.csv").read_bytes() == CONVERTED
        np.testing.assert_allclose(x, [[-0.55556, 0.25], [0.0, 1.0], [0.12346, -0.08333],
                                       [1.0, -1.0]])
        np.testing.assert_array_equal(r, [[1, 2, 3], [3, 1, 2], [2, 3, 1], [1, 3, 2]])
        (src / "wine.csv").unlink()  # now served from the cache, no download
        x2, _ = load_label_ranking("wine", cache_dir=cache)
        np.testing.assert_array_equal(x, x2)
    finally:
        if srv:
            srv.shutdown()


def test_a_checksum_mismatch_raises_and_caches_nothing(tmp_path, monkeypatch):
    (tmp_path / "glass.csv").write_text(PUBLIC)
    monkeypatch.setenv("SOFTORDER_LABEL_RANKING_URL", tmp_path.as_uri() + "/{name}.csv")
    monkeypatch.setitem(D._SETS, "glass", ("c", (4, 2, 3), "0" * 64))
    with pytest.raises(ValueError, match="checksum mismatch.*glass"):
        load_label_ranking("glass", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "glass.csv").exists()
    assert not any((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_a_set_without_a_recorded_checksum_loads_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "vowel.csv").write_text(PUBLIC)
    monkeypatch.setenv("SOFTORDER_LABEL_RANKING_URL", tmp_path.as_uri() + "/{name}.csv")
    with pytest.warns(UserWarning, match="no checksum.*vowel"):
        x, _ = load_label_ranking("vowel", cache_dir=tmp_path / "cache")
    assert x.shape == (4, 2)


def test_errors_name_the_argument(tmp_path, monkeypatch):
    monkeypatch.delenv("SOFTORDER_LABEL_RANKING_DIR", raising=False)
    with pytest.raises(ValueError, match="name must be one of"):
        load_label_ranking("not-a-set")
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_label_ranking("iris", cache_dir=tmp_path, download=False)
    with pytest.raises(TypeError, match="download"):
        load_label_ranking("iris", cache_dir=tmp_path, download="yes")  # type: ignore[arg-type]
    monkeypatch.setenv("SOFTORDER_LABEL_RANKING_URL", (tmp_path / "missing").as_uri() + "/{name}")
    with pytest.raises(OSError, match="could not download.*data_dir"):
        load_label_ranking("iris", cache_dir=tmp_path / "c")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "iris.csv").write_text("3,1,2\n0.1,1,2\n")
    with pytest.raises(ValueError, match="expected 3 rows"):
        load_label_ranking("iris", data_dir=tmp_path / "bad", download=False)
