"""Every ```pycon example of the documentation site that uses TensorFlow runs and prints what
it shows (the others: tests/test_docs_examples.py)."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from _docs_examples import DOCS, pages, run_page  # noqa: E402


def test_the_site_has_tensorflow_examples():
    assert len(pages(tensorflow=True)) >= 2


@pytest.mark.parametrize("page", pages(tensorflow=True), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_tensorflow_example_of_the_page_prints_what_it_shows(page):
    run_page(page, tensorflow=True)
