"""Every ```pycon example of the documentation site runs and prints what it shows (NumPy,
PyTorch and JAX blocks; TensorFlow blocks: tests/tf/test_docs_examples_tf.py)."""

import pytest
from _docs_examples import DOCS, pages, run_page


def test_the_site_has_examples_outside_tensorflow():
    assert len(pages(tensorflow=False)) >= 5


@pytest.mark.parametrize("page", pages(tensorflow=False), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_example_of_the_page_prints_what_it_shows(page):
    run_page(page, tensorflow=False)
