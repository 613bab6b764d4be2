"""Command-line adapters: parse, call one service, render. No business logic, no SQL."""
