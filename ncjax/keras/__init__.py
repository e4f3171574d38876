"""Keras model import: configs and weights read with h5py and json, layers as pure JAX functions."""
