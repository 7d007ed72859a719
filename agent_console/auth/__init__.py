"""Console users, passwords (argon2) and server-side login sessions."""
