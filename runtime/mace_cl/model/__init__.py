"""The model and its files: the graph, and the on-disk formats (container, model file,
compiled-program file, manifest), one module each. Imports nothing else of mace_cl.
"""
