"""The jax front end."""
