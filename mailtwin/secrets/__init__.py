"""Where passwords and OAuth2 tokens come from: the config, a Python expression, a command,
~/.netrc, the OS keyring, an OAuth2 token endpoint. Everything here runs only when a connection
logs in (or for ``mailtwin auth``), never at config load."""
