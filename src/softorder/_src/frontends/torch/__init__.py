"""The torch front end."""
