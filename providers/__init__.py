"""Built-in provider plugins, one package each."""
