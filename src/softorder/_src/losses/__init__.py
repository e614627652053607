r"""Losses and soft statistics, written once over a front end's operators.

`functions` holds the math of every loss and statistic, as functions of a `Frontend`
(`frontend.Frontend`): the front end's differentiable ``soft_rank`` / ``soft_sort`` /
``isotonic_regression``, its array `Backend` (`core.backend`) and its layout helpers. Each
front end builds one `Frontend` and binds the functions with `frontend.public` (a few lines);
docstrings are rendered once (`docs`). See docs/losses.md for the math.
"""
