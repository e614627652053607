"""The label-ranking benchmark sets (Hüllermeier et al. 2008; Cheng et al. 2009): local or fetched.

The sorting paper (Blondel et al. 2020, section 6) evaluates its soft-Spearman layer on these 21
sets. They are not shipped with softorder: `load_label_ranking` reads them from a local folder
or downloads one by name from a public copy, converts it to the folder format, checks a recorded
SHA-256 and caches it.

Folder format (one ``NAME.csv`` per set): a first line ``n_samples,n_features,n_labels``, then
one line per sample: the features, then the rank of each label (1 = most preferred), CRLF line
ends, features printed with five decimals. Public source: the CSV copies of the sets in the
scikit-lr repository (github.com/alfaro96/scikit-lr, ``sklr/datasets/data/label_ranking``),
whose header line also names the columns and whose numbers carry six digits; the conversion
keeps the three counts and prints the features with ``%.5f`` (no ``-0.00000``) and the ranks as
integers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

__all__ = ["load_label_ranking", "label_ranking_names", "LABEL_RANKING_SOURCE"]

#: URL template of the public copy (``{commit}`` and ``{name}`` filled in per set); the
#: environment variable SOFTORDER_LABEL_RANKING_URL (with ``{name}``) overrides it.
LABEL_RANKING_SOURCE = ("https://raw.githubusercontent.com/alfaro96/scikit-lr/{commit}/"
                        "sklr/datasets/data/label_ranking/{name}.csv")

_C1 = "251aec165e92f95b33ad72b3d5a955795ca87478"
_C2 = "c030b3e9eaadb946a36719fd605c8d5768fccca5"
_C3 = "eff5cf3c7bcab0a71cc7c7988f0db7f205cc6418"
_C4 = "5311a496112bed21e213dbe7a6fa9b7788e860e4"
_C5 = "4ac4e5aec0258f326dffea6a365ba1b9e5d07463"
_C6 = "dd20ce9bacb1f695810d53b7356747dacd1504b9"

# name: (commit of the public copy, (n_samples, n_features, n_labels), SHA-256 of the converted
# file or None). The checksums are those of the converted files as distributed with the
# project's test data (../shared/datasets/label_ranking); the conversion reproduces those files
# from the public copy (checked here on rows of iris). The five sets without a checksum were
# not available to verify: they load with a warning.
_SETS: dict[str, tuple[str, tuple[int, int, int] | None, str | None]] = {
    "authorship": (_C2, (841, 70, 4),
                   "9b418484945778a82f088077b98a6157b72e1f15f39cf1b536023334091d9621"),
    "bodyfat": (_C3, (252, 7, 7),
                "f6e3269224e54be7de32204ea42399ad69fc8637fcf1e128539ca9f102b3dd86"),
    "calhousing": (_C1, (20640, 4, 4),
                   "2648e480e567df38994b2e80bc565a993a9219b079ea8c0e2baba6e87298ef8b"),
    "cold": (_C1, (2465, 24, 4),
             "c91832453e1fe43ba569389f5e47140736404140144b2fbca3bdb4750b54d762"),
    "cpu": (_C1, (8192, 6, 5),
            "9fc979b1b52e0af1d3cabeb531947766eb95a70c322904fb118c97d0c04833e1"),
    "diau": (_C2, (2465, 24, 7),
             "c4264d2694cd0f56848dbc35b4304cb0e0b9b4e5959eb06af7edebb35b9dac8c"),
    "dtt": (_C4, (2465, 24, 4),
            "f5194db79df900094057f0460b2a8037a117c678ea2a472b5fec41bfdd292390"),
    "elevators": (_C5, None, None),
    "fried": (_C4, (40768, 9, 5),
              "55cc01da18fb1cbab232e4b4c7a0b6f8500f4d6abeb727d783f3a91669d068e2"),
    "glass": (_C6, (214, 9, 6),
              "dc69d19c4178da4e5765920e0e766026dbd39347bc5a48d7118a6708afe6d796"),
    "heat": (_C1, None, None),
    "housing": (_C5, (506, 6, 6),
                "2046a0e63e81c6a38e571d63bac10fc4fbb55a7cd1bd780bb6905359ed533cd7"),
    "iris": (_C5, (150, 4, 3),
             "b06d2d56bc1f5364fa483f3fdaf15548003fb80f9b914813b5cc8841734149e2"),
    "pendigits": (_C1, (10992, 16, 10),
                  "5a60fdf3b4e0a1a8bb30d8c81c6f37e7e2641a3458d3eca93ffe51133cb64833"),
    "segment": (_C2, None, None),
    "spo": (_C3, (2465, 24, 11),
            "ec1610bc66411c08a803977f0f4ce7360eacb8480c50881f58b5f9394f441f82"),
    "stock": (_C5, None, None),
    "vehicle": (_C2, (846, 18, 4),
                "6cef189afb88816bbc3bf17d7719833ebc893501c965828e1f8b222448d05d58"),
    "vowel": (_C6, None, None),
    "wine": (_C6, (178, 13, 3),
             "27d0560470b01827e16d4ad698723a223fbfac596a08689f5b202fc0a53d15b1"),
    "wisconsin": (_C4, (194, 16, 16),
                  "7f099e513c846cbf13b0b81b1cfbca664236d26f19adfd791e0dcf9e5b411421"),
}


def label_ranking_names() -> tuple[str, ...]:
    """The names of the 21 label-ranking sets of the sorting paper, sorted.

    Example:
        >>> from softorder.datasets import label_ranking_names
        >>> len(label_ranking_names()), label_ranking_names()[:3]
        (21, ('authorship', 'bodyfat', 'calhousing'))
    """
    return tuple(sorted(_SETS))


def _parse(text: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{origin}: empty file")
    try:
        m, d, k = (int(v) for v in lines[0].split(",")[:3])
    except ValueError as e:
        raise ValueError(f"{origin}: the first line must start with n_samples,n_features,"
                         f"n_labels; got {lines[0][:80]!r}") from e
    rows = [ln.split(",") for ln in lines[1:]]
    if len(rows) != m or any(len(r) != d + k for r in rows):
        raise ValueError(f"{origin}: expected {m} rows of {d + k} values after the header")
    data = np.array(rows, dtype=np.float64)
    return data[:, :d], data[:, d:]


def _convert(text: str, origin: str) -> bytes:
    """The public copy (header with column names, six digits) in the folder format."""
    x, r = _parse(text, origin)
    out = [f"{x.shape[0]},{x.shape[1]},{r.shape[1]}"]
    for xi, ri in zip(x, r):
        feats = []
        for v in xi:
            s = f"{round(float(v), 5):.5f}"
            feats.append(s[1:] if s.startswith("-") and float(s) == 0.0 else s)
        out.append(",".join(feats + [str(int(v)) for v in ri]))
    return ("\r\n".join(out) + "\r\n").encode("ascii")


def _default_cache() -> Path:
    root = os.environ.get("SOFTORDER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "softorder")
    return Path(root) / "label_ranking"


def _download(name: str, target: Path) -> None:
    commit, _, sha = _SETS[name]
    template = os.environ.get("SOFTORDER_LABEL_RANKING_URL") or LABEL_RANKING_SOURCE
    url = template.format(name=name, commit=commit)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - http(s)/file URL
            text = resp.read().decode("utf-8")
    except OSError as e:
        raise OSError(f"could not download the label-ranking set {name!r} from {url}: {e}. "
                      f"Put {name}.csv in a local folder and pass data_dir= (or set "
                      f"SOFTORDER_LABEL_RANKING_DIR).") from e
    blob = _convert(text, url)
    digest = hashlib.sha256(blob).hexdigest()
    if sha is None:
        warnings.warn(f"no checksum is recorded for the label-ranking set {name!r}: the "
                      f"download from {url} is not verified (sha256 {digest}).", stacklevel=3)
    elif digest != sha:
        raise ValueError(f"checksum mismatch for the label-ranking set {name!r} from {url}: "
                         f"sha256 {digest}, expected {sha}; nothing was cached.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    os.replace(tmp, target)


def load_label_ranking(name: str, *, data_dir: str | os.PathLike | None = None,
                       cache_dir: str | os.PathLike | None = None,
                       download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features and label ranks of a label-ranking benchmark set, by name.

    Looks for ``NAME.csv`` in ``data_dir`` (default: the environment variable
    SOFTORDER_LABEL_RANKING_DIR), then in ``cache_dir`` (default: SOFTORDER_CACHE, else
    ``~/.cache/softorder``, subfolder ``label_ranking``); otherwise, if ``download``, fetches it
    from the public copy (`LABEL_RANKING_SOURCE`), converts it to the folder format, checks its
    recorded SHA-256 and caches it. The sets are those of Hüllermeier et al. (2008) and Cheng et
    al. (2009) used by Blondel et al. (2020, section 6) for soft-Spearman label ranking.

    Args:
      name: one of `label_ranking_names()`.
      data_dir: a folder of ``NAME.csv`` files in the folder format (module docstring).
      cache_dir: where downloads are kept.
      download: whether to fetch a set found in neither folder.

    Returns:
      ``(features, ranks)``: float arrays ``(n_samples, n_features)`` and
      ``(n_samples, n_labels)``, ``ranks[i, j]`` the rank of label ``j`` for sample ``i``
      (1 = most preferred).

    Raises:
      ValueError: an unknown name, a malformed file, or a checksum mismatch.
      FileNotFoundError: the set is in no folder and ``download`` is False.

    Example:
        >>> import os
        >>> from softorder.datasets import load_label_ranking
        >>> x, r = load_label_ranking("iris", data_dir="../shared/datasets/label_ranking",
        ...                           download=False)  # doctest: +SKIP
        >>> x.shape, r.shape  # doctest: +SKIP
        ((150, 4), (150, 3))
    """
    if not isinstance(name, str) or name not in _SETS:
        raise ValueError(f"name must be one of {', '.join(label_ranking_names())}; got {name!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool; got {type(download).__name__}")
    folders = []
    local = data_dir if data_dir is not None else os.environ.get("SOFTORDER_LABEL_RANKING_DIR")
    if local:
        folders.append(Path(local))
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    folders.append(cache)
    for folder in folders:
        path = folder / f"{name}.csv"
        if path.is_file():
            break
    else:
        if not download:
            raise FileNotFoundError(
                f"the label-ranking set {name!r} is not in "
                f"{' or '.join(str(f) for f in folders)} and download=False")
        path = cache / f"{name}.csv"
        _download(name, path)
    x, r = _parse(path.read_text(), str(path))
    shape = _SETS[name][1]
    if shape is not None and (x.shape[0], x.shape[1], r.shape[1]) != shape:
        raise ValueError(f"{path}: expected {shape[0]} samples, {shape[1]} features and "
                         f"{shape[2]} labels for {name!r}; got {x.shape[0]}, {x.shape[1]}, "
                         f"{r.shape[1]}")
    return x, r
