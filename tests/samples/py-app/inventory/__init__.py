"""A tiny stock-keeping package."""
