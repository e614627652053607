"""Private implementation. Public modules re-export from here."""
