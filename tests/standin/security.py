"""Microsoft.Security (placeholder: being written)."""
