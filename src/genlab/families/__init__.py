"""genlab's model families, one package each; :mod:`genlab.registry` lists their records."""
