"""The edge between the library and the command line: one function per ``genlab`` command on a
trained run. Each computes with library functions that return tensors and dicts, writes the files
(pictures, tables, JSON) and returns their paths; their messages may name the command's flags.
``run``: sample, reconstruct, encode, evaluate; ``latent``: interpolate, latent-map, concept, probe.
"""
