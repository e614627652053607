"""The tensorflow front end."""
