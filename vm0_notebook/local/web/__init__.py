"""The local server's HTTP layer: may import local.store, local.runtime, local.errors, contract."""
