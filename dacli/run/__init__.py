"""One function per command. Each takes a validated config and returns a typed result; none
prints."""
