"""The API's resource groups (``client.agents``, ``client.runs``, ``client.volumes``...)."""
